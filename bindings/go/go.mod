module wasithreads

go 1.19
