package wasithreads

// WaitReadable lets the external tests wait on a Caller's EndFd as the package does.
var WaitReadable = waitReadable
