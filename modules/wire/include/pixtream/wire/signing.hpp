#pragma once
// Ed25519ph chunk signatures (libsodium). See docs/protocol.md, CHUNK.
#include "pixtream/wire/messages.hpp"

#include <array>
#include <cstddef>
#include <optional>
#include <span>

namespace pixtream::wire {

// A channel's signing key; wiped from memory when destroyed.
class secret_key {
public:
    static constexpr std::size_t size = 64;  // libsodium layout: 32-byte seed then the public key

    secret_key() noexcept = default;
    secret_key(const secret_key&) noexcept = default;
    secret_key& operator=(const secret_key&) noexcept = default;
    ~secret_key();

    const std::array<std::byte, size>& bytes() const noexcept { return bytes_; }
    std::array<std::byte, size>& bytes() noexcept { return bytes_; }
    // The public key embedded in the secret key.
    core::channel_key public_key() const noexcept;

private:
    std::array<std::byte, size> bytes_{};
};

struct keypair {
    core::channel_key public_key;
    secret_key secret;
};

keypair generate_keypair();
// The keypair of a stored 64-byte secret key; nullopt if its embedded public key does not match its seed.
std::optional<keypair> keypair_from_secret(std::span<const std::byte> secret);

// Sets c.sig to the signature of c's id, timestamp, flags, header ref, length and payload.
void sign_chunk(chunk& c, const secret_key& key);
// True when c.sig is a valid signature of c by `channel`.
bool verify_chunk(const chunk& c, const core::channel_key& channel);

}  // namespace pixtream::wire
