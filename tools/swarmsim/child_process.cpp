#include "child_process.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace asio = boost::asio;

namespace pixtream::swarmsim {

namespace {

constexpr std::size_t tail_limit = 4096;

// Closes a descriptor once (for the parent's ends on error paths).
struct fd_guard {
    int fd = -1;
    ~fd_guard() {
        if (fd >= 0) ::close(fd);
    }
    int release() noexcept {
        const int f = fd;
        fd = -1;
        return f;
    }
};

std::string errno_text(int e) { return std::strerror(e); }

// In the child between fork and exec: async-signal-safe calls only. Never returns.
[[noreturn]] void exec_child(char* const* args, int in_fd, int out_fd, int status_fd, pid_t parent) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // swarmsim died before prctl: do not run at all
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (const int sig : {SIGPIPE, SIGINT, SIGTERM, SIGCHLD, SIGHUP}) ::sigaction(sig, &dfl, nullptr);  // SIGPIPE is ignored in swarmsim
    if (::dup2(in_fd, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(out_fd, 2) < 0) {
        const int e = errno;
        [[maybe_unused]] auto n = ::write(status_fd, &e, sizeof e);
        ::_exit(127);
    }
    // The exec status pipe goes to descriptor 3 (close-on-exec); every other descriptor is closed.
    if (status_fd != 3) {
        ::dup2(status_fd, 3);
        ::fcntl(3, F_SETFD, FD_CLOEXEC);
    }
    if (::close_range(4, ~0U, 0) != 0) {
        for (int fd = 4; fd < 65536; ++fd) ::close(fd);  // kernels before 5.9
    }
    ::execv(args[0], args);
    const int e = errno;
    [[maybe_unused]] auto n = ::write(3, &e, sizeof e);
    ::_exit(127);
}

}  // namespace

child_process::child_process(const asio::any_io_executor& ex, std::string name, const std::vector<std::string>& argv,
                             bool stdin_pipe, std::function<bool(const std::string&)> ready)
    : name_(std::move(name)), out_(ex), in_(ex), ready_timer_(ex), ready_(std::move(ready)) {
    if (argv.empty()) throw std::invalid_argument("child_process: empty argv");
    std::array<int, 2> out{-1, -1};
    std::array<int, 2> in{-1, -1};
    std::array<int, 2> status{-1, -1};
    if (::pipe2(out.data(), O_CLOEXEC) != 0) throw std::runtime_error("cannot start " + name_ + ": pipe: " + errno_text(errno));
    fd_guard out_r{out[0]}, out_w{out[1]};
    if (stdin_pipe) {
        if (::pipe2(in.data(), O_CLOEXEC) != 0) throw std::runtime_error("cannot start " + name_ + ": pipe: " + errno_text(errno));
    } else {
        in[0] = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (in[0] < 0) throw std::runtime_error("cannot start " + name_ + ": /dev/null: " + errno_text(errno));
    }
    fd_guard in_r{in[0]}, in_w{in[1]};
    if (::pipe2(status.data(), O_CLOEXEC) != 0) throw std::runtime_error("cannot start " + name_ + ": pipe: " + errno_text(errno));
    fd_guard status_r{status[0]}, status_w{status[1]};

    std::vector<std::string> copy = argv;
    std::vector<char*> args;
    for (auto& a : copy) args.push_back(a.data());
    args.push_back(nullptr);

    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("cannot start " + name_ + ": fork: " + errno_text(errno));
    if (pid_ == 0) exec_child(args.data(), in[0], out[1], status[1], parent);
    ::setpgid(pid_, pid_);  // as the child does: whichever runs first, signal() can address the group

    // Parent: the exec status pipe closes (EOF) when exec succeeds, else it carries errno.
    ::close(status_w.release());
    ::close(out_w.release());
    ::close(in_r.release());
    int err = 0;
    ssize_t n = 0;
    do {
        n = ::read(status_r.fd, &err, sizeof err);
    } while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(sizeof err)) {
        int st = 0;
        while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
        }
        exited_ = true;
        throw std::runtime_error(fmt::format("cannot start {}: {}: {}", name_, argv[0], errno_text(err)));
    }
    out_.assign(out_r.release());
    if (stdin_pipe) in_.assign(in_w.release());
}

child_process::~child_process() {
    if (!exited_ && pid_ > 0) {
        send(SIGKILL);
        int st = 0;
        while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
        }
    }
}

asio::awaitable<void> child_process::drain(std::shared_ptr<child_process> self) {
    std::array<char, 4096> buf{};
    for (;;) {
        auto [ec, n] = co_await self->out_.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
        self->add_output(buf.data(), n);
        if (ec) break;
    }
    if (!self->line_.empty()) self->add_output("\n", 1);
    self->output_ended_ = true;
    self->ready_timer_.cancel();
}

void child_process::add_output(const char* data, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        if (data[i] != '\n') {
            if (line_.size() < tail_limit) line_ += data[i];
            continue;
        }
        if (!ready_line_ && ready_ && ready_(line_)) {
            ready_line_ = line_;
            ready_timer_.cancel();
        }
        tail_ += line_;
        tail_ += '\n';
        line_.clear();
        if (tail_.size() > 2 * tail_limit) tail_.erase(0, tail_.size() - tail_limit);
    }
}

asio::awaitable<std::optional<std::string>> child_process::wait_ready(core::duration timeout, const bool* give_up) {
    const auto deadline = core::clock::now() + timeout;
    while (!ready_line_ && !output_ended_ && !*give_up && core::clock::now() < deadline) {
        ready_timer_.expires_at(deadline);
        co_await ready_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    co_return ready_line_;
}

void child_process::wake() { ready_timer_.cancel(); }

void child_process::close_stdin() {
    boost::system::error_code ec;
    in_.close(ec);
}

void child_process::signal(int sig) {
    if (exited_) return;
    if (sig == SIGTERM || sig == SIGKILL) stopping_ = true;
    send(sig);
}

void child_process::send(int sig) noexcept {
    // The whole process group (the child and anything it started), else the child alone.
    if (::kill(-pid_, sig) != 0) ::kill(pid_, sig);
}

bool child_process::reap() {
    if (exited_) return false;
    int st = 0;
    const pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r != pid_) return false;
    exited_ = true;
    signalled_ = WIFSIGNALED(st);
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return true;
}

std::string child_process::describe_exit() const {
    if (!exited_) return "is running";
    if (signalled_) return fmt::format("was killed by signal {} ({})", status_ - 128, ::strsignal(status_ - 128));
    return fmt::format("exited with status {}", status_);
}

std::string child_process::output_tail() const {
    auto t = tail_.size() > tail_limit ? tail_.substr(tail_.size() - tail_limit) : tail_;
    if (!line_.empty()) t += line_;
    return t;
}

}  // namespace pixtream::swarmsim
