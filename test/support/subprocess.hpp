#pragma once
// A child process for integration tests: stdin from /dev/null, stdout and stderr captured through
// pipes, every wait bounded by a timeout so a misbehaving program fails the test instead of hanging it.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace pixtream::test {

class subprocess {
public:
    explicit subprocess(std::vector<std::string> argv) {
        int out[2];
        int err[2];
        if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        posix_spawn_file_actions_adddup2(&fa, err[1], 2);
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(a.data());
        args.push_back(nullptr);
        const int rc = ::posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        ::close(out[1]);
        ::close(err[1]);
        out_ = out[0];
        err_ = err[0];
        if (rc != 0) throw std::runtime_error("cannot start " + argv[0]);
    }
    ~subprocess() {
        if (!exited_) {
            ::kill(pid_, SIGKILL);
            int st = 0;
            ::waitpid(pid_, &st, 0);
        }
        ::close(out_);
        ::close(err_);
    }
    subprocess(const subprocess&) = delete;
    subprocess& operator=(const subprocess&) = delete;

    pid_t pid() const noexcept { return pid_; }
    void signal(int sig) { ::kill(pid_, sig); }

    // The next line of stdout, or nullopt at EOF or after `timeout`.
    std::optional<std::string> read_line(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            if (const auto nl = out_buf_.find('\n'); nl != std::string::npos) {
                auto line = out_buf_.substr(0, nl);
                out_buf_.erase(0, nl + 1);
                return line;
            }
            if (!read_some(out_, out_buf_, deadline)) return std::nullopt;
        }
    }

    // Waits for exit; the exit status (128 + signal when killed), or nullopt after `timeout`.
    std::optional<int> wait(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        // Drain stderr while waiting so a chatty child cannot block on a full pipe.
        while (!exited_) {
            int st = 0;
            const pid_t r = ::waitpid(pid_, &st, WNOHANG);
            if (r == pid_) {
                exited_ = true;
                status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                break;
            }
            if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
            read_some(err_, err_buf_, std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(20)));
        }
        return status_;
    }

    // Everything the child wrote to stderr (call after wait()).
    std::string stderr_text() {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        while (read_some(err_, err_buf_, deadline)) {
        }
        return err_buf_;
    }
    std::string stdout_text() {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        while (read_some(out_, out_buf_, deadline)) {
        }
        return out_buf_;
    }

private:
    // Appends what `fd` has within the deadline; false at EOF or timeout.
    static bool read_some(int fd, std::string& into, std::chrono::steady_clock::time_point deadline) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(std::max<long>(0, left.count()))) <= 0) return false;
        char buf[4096];
        const auto n = ::read(fd, buf, sizeof buf);
        if (n <= 0) return false;
        into.append(buf, static_cast<std::size_t>(n));
        return true;
    }

    pid_t pid_ = -1;
    int out_ = -1;
    int err_ = -1;
    std::string out_buf_;
    std::string err_buf_;
    bool exited_ = false;
    int status_ = -1;
};

}  // namespace pixtream::test
