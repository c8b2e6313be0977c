#pragma once
// One child program of swarmsim's --processes mode (pixtream-tracker, -source or -peer).
//
// Started with fork + exec: stdout and stderr go to one pipe that drain() empties (the last few KiB are
// kept for error messages, so a chatty child never blocks and memory stays bounded); stdin is a pipe
// (the source's input) or /dev/null. The child gets its own process group, so a Ctrl-C at the terminal
// reaches swarmsim alone and swarmsim stops its children in order; it is SIGKILLed by the kernel if
// swarmsim dies (PR_SET_PDEATHSIG); it inherits no descriptor but 0, 1 and 2.
//
// The owner reaps: on SIGCHLD it calls reap() on each child. The destructor SIGKILLs and reaps a child
// still running, so no path leaves a zombie or an orphan behind.
//
// Not thread-safe: use it on one executor.
#include "pixtream/core/time.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pixtream::swarmsim {

class child_process {
public:
    // Starts argv[0] (a path) with argv. `ready` recognises the program's start-up line (see
    // wait_ready()). Throws std::runtime_error with a readable reason when the program cannot be
    // started (not found, not executable, no more processes...).
    child_process(const boost::asio::any_io_executor& ex, std::string name, const std::vector<std::string>& argv,
                  bool stdin_pipe, std::function<bool(const std::string&)> ready);
    ~child_process();
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    const std::string& name() const noexcept { return name_; }
    pid_t pid() const noexcept { return pid_; }

    // Reads the child's output until EOF. Spawn it once, right after construction.
    static boost::asio::awaitable<void> drain(std::shared_ptr<child_process> self);

    // Waits for the first output line `ready` accepts (a program's start-up line with its ports), at
    // most `timeout`; nullopt if the output ended (the child exited), `*give_up` became true (see
    // wake()) or the time ran out first. The caller keeps the object alive meanwhile.
    boost::asio::awaitable<std::optional<std::string>> wait_ready(core::duration timeout, const bool* give_up);
    // Wakes wait_ready() so that it looks at `give_up` again.
    void wake();

    // The child's stdin (only with stdin_pipe); close_stdin() gives it EOF.
    boost::asio::posix::stream_descriptor& stdin_pipe() { return in_; }
    void close_stdin();

    // Sends a signal to the child's process group (if the child was not reaped yet). SIGTERM and
    // SIGKILL mark the exit as expected.
    void signal(int sig);
    bool stopping() const noexcept { return stopping_; }
    // The start-up line was seen.
    bool ready() const noexcept { return ready_line_.has_value(); }
    // The child's stdout and stderr are closed (it exited, most likely).
    bool output_ended() const noexcept { return output_ended_; }

    // Reaps the child if it has exited (waitpid, WNOHANG); true if it exited just now.
    bool reap();
    bool exited() const noexcept { return exited_; }
    // Exit status, 128 + signal number if it was killed by a signal.
    int status() const noexcept { return status_; }
    // "exited with status N" or "was killed by signal N (NAME)".
    std::string describe_exit() const;

    // The last lines the child wrote (stdout and stderr), at most a few KiB.
    std::string output_tail() const;

private:
    void add_output(const char* data, std::size_t n);
    void send(int sig) noexcept;

    std::string name_;
    pid_t pid_ = -1;
    boost::asio::posix::stream_descriptor out_;
    boost::asio::posix::stream_descriptor in_;
    boost::asio::steady_timer ready_timer_;
    std::function<bool(const std::string&)> ready_;
    std::optional<std::string> ready_line_;
    std::string line_;  // the current, incomplete output line (bounded)
    std::string tail_;  // the last output, bounded
    bool output_ended_ = false;
    bool stopping_ = false;
    bool exited_ = false;
    bool signalled_ = false;
    int status_ = -1;
};

}  // namespace pixtream::swarmsim
