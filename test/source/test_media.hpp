#pragma once
// Test media for the source's tests, generated once per test program by ffmpeg, and file helpers.
#include "pixtream/source/chunker.hpp"
#include "pixtream/source/media_clock.hpp"
#include "subprocess.hpp"
#include "test_files.hpp"

#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <sstream>
#include <string>
#include <vector>

namespace pixtream::source {
inline std::ostream& boost_test_print_type(std::ostream& os, container c) { return os << name_of(c); }
inline std::ostream& boost_test_print_type(std::ostream& os, clock_source c) { return os << name_of(c); }
}  // namespace pixtream::source

namespace pixtream::source::testing {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

using byte_vector = std::vector<std::byte>;

using pixtream::test::files::ffmpeg;
using pixtream::test::files::read_file;
using pixtream::test::files::temp_dir;
using pixtream::test::files::write_file;

inline void append(byte_vector& to, std::span<const std::byte> b) { to.insert(to.end(), b.begin(), b.end()); }

// `audio` followed by an ID3v2 tag that the end of the input cuts short (a broadcaster that dropped):
// a 10-byte header announcing 1,024 bytes, and only 100 of them.
inline byte_vector with_cut_short_id3_tag(const byte_vector& audio) {
    byte_vector out = audio;
    const byte_vector header = {std::byte{'I'}, std::byte{'D'}, std::byte{'3'}, std::byte{4}, std::byte{0},
                                std::byte{0},   std::byte{0},   std::byte{0},   std::byte{8}, std::byte{0}};
    append(out, header);
    append(out, byte_vector(100, std::byte{0x22}));
    return out;
}

// Test media, generated once per run by ffmpeg.
struct media {
    temp_dir dir;
    byte_vector h264_ts, mpeg2_ts, aac_ts, vorbis_ogg, theora_ogg, mp3, adts;

    media() {
        const auto gen = [this](const std::string& name, std::vector<std::string> args) {
            return pixtream::test::files::generate_media(dir.path, name, std::move(args));
        };
        h264_ts = gen("h264.ts", {"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i",
                                  "sine=frequency=440:sample_rate=44100", "-t", "6", "-c:v", "libx264", "-preset",
                                  "veryfast", "-g", "25", "-c:a", "aac", "-f", "mpegts"});
        mpeg2_ts = gen("mpeg2.ts", {"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i",
                                    "sine=frequency=330:sample_rate=48000", "-t", "4", "-c:v", "mpeg2video", "-g",
                                    "12", "-b:v", "400k", "-c:a", "mp2", "-f", "mpegts"});
        aac_ts = gen("aac.ts", {"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "4", "-c:a",
                                "aac", "-f", "mpegts"});
        vorbis_ogg = gen("vorbis.ogg", {"-f", "lavfi", "-i", "anoisesrc=d=6:c=pink:r=44100", "-ac", "2", "-c:a",
                                        "libvorbis", "-page_duration", "200000", "-f", "ogg"});
        theora_ogg = gen("theora.ogg", {"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i",
                                        "sine=frequency=440:sample_rate=44100", "-t", "5", "-c:v", "libtheora", "-g",
                                        "25", "-q:v", "5", "-c:a", "libvorbis", "-page_duration", "200000", "-f",
                                        "ogg"});
        // ffmpeg's MP3 muxer starts with an ID3v2 tag and an Info frame.
        mp3 = gen("audio.mp3", {"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "5", "-c:a",
                                "libmp3lame", "-b:a", "128k", "-f", "mp3"});
        adts = gen("audio.aac", {"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "5", "-c:a", "aac",
                                 "-b:a", "96k", "-f", "adts"});
    }
};

inline media& test_media() {
    static media m;
    return m;
}

}  // namespace pixtream::source::testing
