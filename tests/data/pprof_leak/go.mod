module pprof_leak

go 1.19
