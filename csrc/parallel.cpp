// Persistent worker pool (see parallel.hpp).
#include "parallel.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "common.hpp"

#if defined(__linux__)
#include <sched.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#endif

namespace rapsam {

// ------------------------------------------------------------------ thread count
int available_cores() {
#if defined(__linux__) && defined(CPU_COUNT)
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        const int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
#endif
    const unsigned hw = std::thread::hardware_concurrency();
    return hw > 0 ? static_cast<int>(hw) : 1;
}

namespace {

// Python's repr() of an ASCII string (the messages must match rapsam_edge.contract.threads);
// bytes >= 0x80 are copied as they are.
std::string quoted(const std::string& s) {
    const bool dq = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
    const char q = dq ? '"' : '\'';
    std::string out(1, q);
    static const char* hex = "0123456789abcdef";
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (ch == '\\' || ch == q) {
            out += '\\';
            out += ch;
        } else if (ch == '\t') {
            out += "\\t";
        } else if (ch == '\n') {
            out += "\\n";
        } else if (ch == '\r') {
            out += "\\r";
        } else if (c < 0x20 || c == 0x7f) {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        } else {
            out += ch;
        }
    }
    return out + q;
}

}  // namespace

std::optional<int> parse_num_threads(const char* raw) {
    return parse_num_threads(std::string(raw ? raw : ""));
}

std::optional<int> parse_num_threads(const std::string& raw) {
    std::string value = raw;
    const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    while (!value.empty() && space(value.back())) value.pop_back();
    size_t first = 0;
    while (first < value.size() && space(value[first])) ++first;
    value.erase(0, first);
    if (value.empty()) return std::nullopt;
    long n = 0;
    bool ok = value.size() <= 4;
    for (char c : value) {
        ok = ok && c >= '0' && c <= '9';
        if (ok) n = n * 10 + (c - '0');
    }
    if (!ok || n < 1 || n > kMaxThreads)
        fail(std::string(kThreadsEnvVar) + " must be an integer in [1, " +
             std::to_string(kMaxThreads) + "], got " + quoted(raw));
    return static_cast<int>(n);
}

int default_num_threads() {
    const std::optional<int> n = parse_num_threads(std::getenv(kThreadsEnvVar));
    return n ? *n : std::min(available_cores(), kMaxThreads);
}

namespace {

std::atomic<int> g_threads{0};  // 0: not resolved yet

// ------------------------------------------------------------------ the pool
// One parallel region: parts are claimed in order; the fields are guarded by Pool::m_.
struct Region {
    const std::function<void(int, int)>* body = nullptr;
    int n_parts = 0;
    int next = 0;       // next unclaimed part; the region is queued while next < n_parts
    int remaining = 0;  // parts not finished (cancelled ones count as finished)
    std::exception_ptr error;
};

class Pool {
public:
    void run(int n_parts, const std::function<void(int, int)>& body) {
        ensure_workers(n_parts - 1);
        auto region = std::make_shared<Region>();
        region->body = &body;
        region->n_parts = n_parts;
        region->next = 1;  // part 0 is the caller's
        region->remaining = n_parts;
        {
            std::lock_guard<std::mutex> lock(m_);
            queue_.push_back(region);
        }
        for (int i = 1; i < n_parts; ++i) work_cv_.notify_one();
        int part = 0;
        std::unique_lock<std::mutex> lock(m_, std::defer_lock);
        for (;;) {
            std::exception_ptr error = execute(*region, part);
            lock.lock();
            finish(*region, error);
            if (region->next >= region->n_parts) break;
            part = region->next++;  // no worker took it (yet): run it here
            if (region->next >= region->n_parts) unqueue(region);
            lock.unlock();
        }
        done_cv_.wait(lock, [&] { return region->remaining == 0; });
        if (region->error) std::rethrow_exception(region->error);
    }

    // Workers with an index >= n exit once idle; joins them.
    void shrink(int n) {
        std::lock_guard<std::mutex> resize(resize_m_);
        {
            std::lock_guard<std::mutex> lock(m_);
            target_ = n;
        }
        work_cv_.notify_all();
        if (static_cast<int>(threads_.size()) <= n) return;
        for (size_t i = n; i < threads_.size(); ++i) threads_[i].join();
        threads_.resize(n);
        started_.store(n, std::memory_order_release);
    }

    int workers() const { return started_.load(std::memory_order_acquire); }

private:
    void ensure_workers(int wanted) {
        if (started_.load(std::memory_order_acquire) >= wanted) return;
        std::lock_guard<std::mutex> resize(resize_m_);
        const int allowed = std::min(wanted, num_threads() - 1);
        {
            std::lock_guard<std::mutex> lock(m_);
            target_ = num_threads() - 1;
        }
        while (static_cast<int>(threads_.size()) < allowed) {
            const int index = static_cast<int>(threads_.size());
            try {
                threads_.emplace_back([this, index] { worker(index); });
            } catch (const std::system_error&) {
                break;  // no more threads here: the callers run the parts left over
            }
            started_.store(static_cast<int>(threads_.size()), std::memory_order_release);
        }
    }

    void worker(int index) {
        std::unique_lock<std::mutex> lock(m_);
        for (;;) {
            work_cv_.wait(lock, [&] { return index >= target_ || !queue_.empty(); });
            if (index >= target_) return;
            std::shared_ptr<Region> region = queue_.front();
            const int part = region->next++;
            if (region->next >= region->n_parts) queue_.pop_front();
            lock.unlock();
            std::exception_ptr error = execute(*region, part);
            lock.lock();
            finish(*region, error);
        }
    }

    static std::exception_ptr execute(const Region& region, int part) {
        try {
            (*region.body)(part, region.n_parts);
        } catch (...) {
            return std::current_exception();
        }
        return nullptr;
    }

    // With m_ held: one part done; an error cancels the parts nobody has started.
    void finish(Region& region, std::exception_ptr error) {
        --region.remaining;
        if (error) {
            if (!region.error) region.error = error;
            if (region.next < region.n_parts) {
                region.remaining -= region.n_parts - region.next;
                region.next = region.n_parts;
                queue_.erase(std::find_if(queue_.begin(), queue_.end(),
                                          [&](const auto& r) { return r.get() == &region; }));
            }
        }
        if (region.remaining == 0) done_cv_.notify_all();
    }

    // With m_ held: drops a region whose parts are all claimed from the queue.
    void unqueue(const std::shared_ptr<Region>& region) {
        auto it = std::find(queue_.begin(), queue_.end(), region);
        if (it != queue_.end()) queue_.erase(it);
    }

    std::mutex m_;  // guards queue_, target_ and every queued Region
    std::condition_variable work_cv_, done_cv_;
    std::deque<std::shared_ptr<Region>> queue_;
    int target_ = 0;       // workers allowed: those with index >= target_ exit
    std::mutex resize_m_;  // guards threads_ (start, join)
    std::vector<std::thread> threads_;
    std::atomic<int> started_{0};
};

// The pool is never destroyed: at exit its idle workers wait on a condition variable and
// die with the process, whatever static destructors run first.
std::atomic<Pool*> g_pool{nullptr};

#if defined(__unix__) || defined(__APPLE__)
// A forked child has only the forking thread: the parent's workers are gone and the old
// pool's mutex may be held. Start afresh (leaking the old pool).
void reset_after_fork() {
    if (g_pool.load(std::memory_order_relaxed) != nullptr)
        g_pool.store(new Pool(), std::memory_order_release);
}
#endif

Pool& pool() {
    Pool* p = g_pool.load(std::memory_order_acquire);
    if (p != nullptr) return *p;
    static std::once_flag once;
    std::call_once(once, [] {
#if defined(__unix__) || defined(__APPLE__)
        pthread_atfork(nullptr, nullptr, reset_after_fork);
#endif
        g_pool.store(new Pool(), std::memory_order_release);
    });
    return *g_pool.load(std::memory_order_acquire);
}

}  // namespace

int num_threads() {
    const int n = g_threads.load(std::memory_order_acquire);
    if (n > 0) return n;
    int expected = 0;
    g_threads.compare_exchange_strong(expected, default_num_threads());  // a set wins
    return g_threads.load(std::memory_order_acquire);
}

void set_num_threads(int n) {
    if (n < 1 || n > kMaxThreads)
        fail("n must be an integer in [1, " + std::to_string(kMaxThreads) + "], got " +
             std::to_string(n));
    g_threads.store(n, std::memory_order_release);
    if (Pool* p = g_pool.load(std::memory_order_acquire)) p->shrink(n - 1);
}

int parallel_parts(double work, int requested) {
    if (!(work >= kMinParallelWork)) return 1;
    const int n = num_threads();
    return requested > 0 ? std::min(n, requested) : n;
}

void parallel_for(int n_parts, const std::function<void(int, int)>& body) {
    if (n_parts <= 1) {
        body(0, 1);
        return;
    }
    pool().run(n_parts, body);
}

int pool_workers() {
    Pool* p = g_pool.load(std::memory_order_acquire);
    return p != nullptr ? p->workers() : 0;
}

}  // namespace rapsam
