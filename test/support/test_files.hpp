#pragma once
// Files and programs for the unit and loopback tests: a private temporary directory, whole-file
// reads and writes, a program on PATH, and ffmpeg run to completion.
#include "subprocess.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace pixtream::test::files {

namespace fs = std::filesystem;
using byte_vector = std::vector<std::byte>;

inline std::string find_program(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::istringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
    for (std::string dir; std::getline(dirs, dir, ':');) {
        const fs::path p = fs::path(dir) / name;
        if (::access(p.c_str(), X_OK) == 0) return p.string();
    }
    throw std::runtime_error(name + " not found in PATH");
}

// A private temporary directory, removed with its content.
struct temp_dir {
    fs::path path;
    temp_dir() {
        std::string tmpl = (fs::temp_directory_path() / "pixtream-test-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path = tmpl;
    }
    ~temp_dir() {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
};

inline byte_vector read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    const std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    byte_vector out(s.size());
    std::memcpy(out.data(), s.data(), s.size());
    return out;
}

inline void write_file(const fs::path& p, const byte_vector& data) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

inline void write_file(const fs::path& p, const std::string& data) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

inline std::string ffmpeg_exe() {
    static const std::string exe = find_program("ffmpeg");
    return exe;
}

// Runs ffmpeg with `args`; returns {exit status, stderr}.
inline std::pair<int, std::string> ffmpeg(std::vector<std::string> args,
                                          std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    args.insert(args.begin(), {ffmpeg_exe(), "-nostdin", "-hide_banner"});
    subprocess p(args);
    const auto status = p.wait(timeout);
    if (!status) throw std::runtime_error("ffmpeg did not finish in time");
    return {*status, p.stderr_text()};
}

// Makes `dir`/`name` with ffmpeg (`args`: its inputs, codecs and format) and returns its bytes.
inline byte_vector generate_media(const fs::path& dir, const std::string& name, std::vector<std::string> args) {
    const auto out = (dir / name).string();
    args.insert(args.begin(), {"-v", "error", "-y"});
    args.push_back(out);
    const auto [status, err] = ffmpeg(args, std::chrono::seconds(60));
    if (status != 0) throw std::runtime_error("cannot generate " + name + ": " + err);
    return read_file(out);
}

}  // namespace pixtream::test::files
