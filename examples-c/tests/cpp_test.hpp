// The small test harness of the C++ wrapper's test programs (cpp_api.cpp,
// cpp_plugin.cpp): named tests that count passes and failures, CHECK, expect_throw.
#pragma once

#include <functional>
#include <iostream>
#include <stdexcept>
#include <string>

static int passed = 0, failed = 0;

/// Throws (failing the test it is in) unless `cond` holds.
#define CHECK(cond)                                                                                               \
    do {                                                                                                          \
        if (!(cond))                                                                                              \
            throw std::runtime_error(std::string("line ") + std::to_string(__LINE__) + ": check failed: " + #cond); \
    } while (0)

/// Runs one test, printing "ok   NAME" or "FAIL NAME: why".
static void test(const char *name, const std::function<void()> &body) {
    try {
        body();
        passed++;
        std::cout << "ok   " << name << "\n";
    } catch (const std::exception &e) {
        failed++;
        std::cout << "FAIL " << name << ": " << e.what() << "\n";
    }
}

/// Runs `body` and checks that it throws E; returns it.
template <typename E>
static E expect_throw(const std::function<void()> &body) {
    try {
        body();
    } catch (const E &e) {
        return e;
    }
    throw std::runtime_error("expected an exception, none (or another type) was thrown");
}

/// Prints the counts; the program's exit status.
static int summary() {
    std::cout << passed << " passed, " << failed << " failed\n";
    return failed ? 1 : 0;
}
