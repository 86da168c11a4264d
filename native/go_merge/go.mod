module leaklab/go_merge

go 1.19

require leaklab/unitline v0.0.0

replace leaklab/unitline => ../unitline
