// cpp_merge: the same merge operator written against RocksDB's C++ API, the original
// issue's control. FullMergeV2 writes the merged value into a std::string RocksDB owns,
// so nothing is left for anyone to free: expected flat.
//
//   cpp_merge real|dummy DB PASSES
//
// One unit = one full pass over a merge-only database (leaklab's rocksdb_merge
// fixture). After each pass it appends a unit line to $LEAKLAB_UNITS (leaklab's unit
// protocol) with glibc's heap in use and RSS read by the process itself, and, at the
// pace $LEAKLAB_UNIT_READINGS gives ("<min gap s>,<cost factor>"), waits at the mark
// until the runner has read its mappings (the sync pipe's "u<unit>" request, answered
// with 'u'), as leaklab's Python marks and Go's unitline do.
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "rocksdb/db.h"
#include "rocksdb/merge_operator.h"

namespace {

const char *const kOperatorName = "leaklab.concat";

class Concat : public rocksdb::MergeOperator {
  public:
    explicit Concat(bool real) : real_(real) {}

    bool FullMergeV2(const MergeOperationInput &in, MergeOperationOutput *out) const override {
        out->new_value.clear();
        if (!real_)
            return true;
        if (in.existing_value != nullptr)
            out->new_value.assign(in.existing_value->data(), in.existing_value->size());
        for (const rocksdb::Slice &operand : in.operand_list)
            out->new_value.append(operand.data(), operand.size());
        return true;
    }

    bool PartialMerge(const rocksdb::Slice &, const rocksdb::Slice &, const rocksdb::Slice &, std::string *,
                      rocksdb::Logger *) const override {
        return false;  // keep operands apart: every read does the full merge
    }

    const char *Name() const override { return kOperatorName; }

  private:
    bool real_;
};

long rss_bytes() {
    long pages_total = 0, pages_resident = 0;
    std::ifstream statm("/proc/self/statm");
    statm >> pages_total >> pages_resident;
    return pages_resident * sysconf(_SC_PAGESIZE);
}

size_t malloc_in_use_bytes() {
    struct mallinfo2 info = mallinfo2();
    return info.uordblks + info.hblkhd;
}

using Clock = std::chrono::steady_clock;

const double kReadingWaitS = 2.0;  // a unit mark waits at most this for the runner's reading
const double kFinalWaitS = 60.0;   // the last sample: a profiler may snapshot the process meanwhile

// The sync pipe's ends (LEAKLAB_SYNC_FDS="<ready>,<release>"); false when none was handed over.
bool sync_fds(int *ready, int *release) {
    const char *fds = std::getenv("LEAKLAB_SYNC_FDS");
    return fds != nullptr && std::sscanf(fds, "%d,%d", ready, release) == 2 && *ready >= 0 && *release >= 0;
}

// Write request into the sync pipe and wait at most wait_s for the runner's answer, the
// byte answer: an answer left over from a wait that timed out is dropped first, and an
// answer to another request does not end this wait. The seconds waited.
double ask_and_wait(const std::string &request, char answer, double wait_s) {
    int ready = -1, release = -1;
    if (!sync_fds(&ready, &release))
        return 0.0;
    const Clock::time_point start = Clock::now();
    const int flags = fcntl(release, F_GETFL);
    if (flags < 0 || fcntl(release, F_SETFL, flags | O_NONBLOCK) < 0)
        return wait_s;  // the pipe is gone: wait no more
    char buf[64];
    while (read(release, buf, sizeof buf) > 0) {
    }
    if (write(ready, request.data(), request.size()) != static_cast<ssize_t>(request.size()))
        return wait_s;
    for (;;) {
        const double left = wait_s - std::chrono::duration<double>(Clock::now() - start).count();
        struct pollfd pfd = {release, POLLIN, 0};
        if (left <= 0 || poll(&pfd, 1, static_cast<int>(left * 1000) + 1) <= 0)
            break;
        const ssize_t n = read(release, buf, sizeof buf);
        if (n <= 0 || std::memchr(buf, answer, static_cast<size_t>(n)) != nullptr)
            break;  // the runner's end closed, or this wait's answer
    }
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// The pace of the readings at unit marks: no wait before next_reading, then at least
// max(gap, factor x the last wait) after it. factor 0: never wait (run by hand).
struct Pace {
    double gap = 0.0, factor = 0.0;
    Clock::time_point next_reading = Clock::time_point::min();

    Pace() {
        const char *pace = std::getenv("LEAKLAB_UNIT_READINGS");
        double g = 0.0, f = 0.0;
        if (pace != nullptr && std::sscanf(pace, "%lf,%lf", &g, &f) == 2 && g >= 0 && f > 0)
            gap = g, factor = f;
    }

    // At a unit mark that is due, let the runner read the process before going on.
    void wait_for_reading(long unit) {
        if (factor == 0.0 || Clock::now() < next_reading)
            return;
        const double waited = ask_and_wait("u" + std::to_string(unit) + "\n", 'u', kReadingWaitS);
        next_reading = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(std::max(gap, factor * waited)));
    }
};

// Ask the runner for its last sample and wait until it has been taken, everything still alive.
void finish() { ask_and_wait("x", 'x', kFinalWaitS); }

}  // namespace

int main(int argc, char **argv) {
    std::string kind = argc == 4 ? argv[1] : "";
    long passes = argc == 4 ? std::atol(argv[3]) : 0;
    if ((kind != "real" && kind != "dummy") || passes < 1) {
        std::fprintf(stderr, "usage: %s real|dummy DB PASSES\n", argv[0]);
        return 2;
    }
    rocksdb::Options options;
    options.merge_operator = std::make_shared<Concat>(kind == "real");
    options.disable_auto_compactions = true;
    options.compression = rocksdb::kNoCompression;
    rocksdb::DB *raw = nullptr;
    rocksdb::Status status = rocksdb::DB::OpenForReadOnly(options, argv[2], &raw);
    if (!status.ok()) {
        std::fprintf(stderr, "cpp_merge: open %s: %s\n", argv[2], status.ToString().c_str());
        return 1;
    }
    std::unique_ptr<rocksdb::DB> db(raw);
    const char *path = std::getenv("LEAKLAB_UNITS");
    FILE *units = path != nullptr ? std::fopen(path, "a") : stdout;
    if (units == nullptr) {
        std::perror("LEAKLAB_UNITS");
        return 1;
    }
    // unit 0: the database open, before the first pass
    Pace pace;
    std::fprintf(units, "0 malloc_in_use_bytes=%zu rss_bytes=%ld\n", malloc_in_use_bytes(), rss_bytes());
    std::fflush(units);
    pace.wait_for_reading(0);
    rocksdb::ReadOptions read;
    read.fill_cache = false;
    for (long pass = 1; pass <= passes; pass++) {
        std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(read));
        long keys = 0, value_bytes = 0;
        for (it->SeekToFirst(); it->Valid(); it->Next()) {
            std::string value = it->value().ToString();  // the service used each value
            keys++;
            value_bytes += static_cast<long>(value.size());
        }
        if (!it->status().ok()) {
            std::fprintf(stderr, "cpp_merge: %s\n", it->status().ToString().c_str());
            return 1;
        }
        std::fprintf(units, "%ld keys_read=%ld value_bytes_read=%ld malloc_in_use_bytes=%zu rss_bytes=%ld\n", pass,
                     keys, value_bytes, malloc_in_use_bytes(), rss_bytes());
        std::fflush(units);
        pace.wait_for_reading(pass);
    }
    finish();
    return 0;
}
