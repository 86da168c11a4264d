module leaklab/unitline

go 1.19
