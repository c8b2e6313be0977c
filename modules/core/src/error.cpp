#include "pixtream/core/error.hpp"

namespace pixtream::core {
namespace {

class category final : public std::error_category {
public:
    const char* name() const noexcept override { return "pixtream.core"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
        case errc::out_of_window: return "chunk id outside the buffer-map window";
        case errc::invalid_hex: return "not a valid hex identifier";
        case errc::invalid_argument: return "invalid argument";
        }
        return "unknown core error";
    }
};

}  // namespace

const std::error_category& core_category() noexcept {
    static const category instance;
    return instance;
}

}  // namespace pixtream::core
