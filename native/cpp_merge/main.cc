// cpp_merge: the same merge operator written against RocksDB's C++ API, the original
// issue's control. FullMergeV2 writes the merged value into a std::string RocksDB owns,
// so nothing is left for anyone to free: expected flat.
//
//   cpp_merge real|dummy DB PASSES
//
// One unit = one full pass over a merge-only database (leaklab's rocksdb_merge
// fixture). After each pass it appends a unit line to $LEAKLAB_UNITS (leaklab's unit
// protocol) with glibc's heap in use and RSS read by the process itself.
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
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

// Ask the runner for its last sample (LEAKLAB_SYNC_FDS="<ready>,<release>") and wait
// until it has been taken, everything still alive.
void finish() {
    const char *fds = std::getenv("LEAKLAB_SYNC_FDS");
    int ready = -1, release = -1;
    if (fds == nullptr || std::sscanf(fds, "%d,%d", &ready, &release) != 2)
        return;
    char byte = 'x';
    if (write(ready, &byte, 1) == 1)
        (void)read(release, &byte, 1);
}

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
    std::fprintf(units, "0 malloc_in_use_bytes=%zu rss_bytes=%ld\n", malloc_in_use_bytes(), rss_bytes());
    std::fflush(units);
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
    }
    finish();
    return 0;
}
