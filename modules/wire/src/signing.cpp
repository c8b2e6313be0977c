#include "pixtream/wire/signing.hpp"

#include "pixtream/wire/codec.hpp"

#include <sodium.h>

#include <cstring>
#include <stdexcept>

namespace pixtream::wire {
namespace {

void ensure_sodium() {
    static const int rc = sodium_init();  // thread-safe, idempotent
    if (rc < 0) throw std::runtime_error("libsodium failed to initialise");
}

const unsigned char* uc(const std::byte* p) noexcept { return reinterpret_cast<const unsigned char*>(p); }
unsigned char* uc(std::byte* p) noexcept { return reinterpret_cast<unsigned char*>(p); }

static_assert(crypto_sign_BYTES == signature_size);
static_assert(crypto_sign_SECRETKEYBYTES == secret_key::size);
static_assert(crypto_sign_PUBLICKEYBYTES == core::channel_key::size);

void hash_signed_part(crypto_sign_state& st, const chunk& c) {
    crypto_sign_init(&st);
    const auto header = chunk_signed_header(c);
    crypto_sign_update(&st, uc(header.data()), header.size());
    if (!c.payload.empty()) crypto_sign_update(&st, uc(c.payload.data()), c.payload.size());
}

}  // namespace

secret_key::~secret_key() { sodium_memzero(bytes_.data(), bytes_.size()); }

core::channel_key secret_key::public_key() const noexcept {
    core::channel_key pk;
    std::memcpy(pk.bytes().data(), bytes_.data() + 32, 32);
    return pk;
}

keypair generate_keypair() {
    ensure_sodium();
    keypair kp;
    crypto_sign_keypair(uc(kp.public_key.bytes().data()), uc(kp.secret.bytes().data()));
    return kp;
}

std::optional<keypair> keypair_from_secret(std::span<const std::byte> secret) {
    ensure_sodium();
    if (secret.size() != secret_key::size) return std::nullopt;
    keypair kp;
    secret_key check;
    // Re-derive from the seed (first 32 bytes) and insist the stored public half matches.
    crypto_sign_seed_keypair(uc(kp.public_key.bytes().data()), uc(check.bytes().data()), uc(secret.data()));
    if (std::memcmp(check.bytes().data(), secret.data(), secret_key::size) != 0) return std::nullopt;
    kp.secret = check;
    return kp;
}

void sign_chunk(chunk& c, const secret_key& key) {
    ensure_sodium();
    crypto_sign_state st;
    hash_signed_part(st, c);
    crypto_sign_final_create(&st, uc(c.sig.data()), nullptr, uc(key.bytes().data()));
}

bool verify_chunk(const chunk& c, const core::channel_key& channel) {
    ensure_sodium();
    crypto_sign_state st;
    hash_signed_part(st, c);
    auto sig = c.sig;  // crypto_sign_final_verify takes a non-const pointer
    return crypto_sign_final_verify(&st, uc(sig.data()), channel.data()) == 0;
}

}  // namespace pixtream::wire
