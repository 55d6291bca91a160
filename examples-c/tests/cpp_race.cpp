// Built with -fsanitize=thread (CTest cpp-race-tsan): a run keeps the callbacks its config
// had when it started, while another thread changes that config's callbacks and starts
// more runs from it. ThreadSanitizer reports a race (exit status 66) if a run reads a
// callback the config's setters write.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "cpp_guests.hpp"
#include "wasithreads.hpp"

int main() {
    constexpr int TICKS = 3000;
    wasithreads::Engine engine;
    auto module = wasithreads::Module::from_bytes(engine, guests::ticks(TICKS));
    auto one_tick = wasithreads::Module::from_bytes(engine, guests::ticks(1));

    std::atomic<int> first{0}, later{0}, exits{0}, mutations{0};
    wasithreads::RunConfig config;
    // The first call waits until the config has changed a few times, so that the run's
    // other calls overlap the changes.
    config.on_output(wasithreads::Stdout, [&](int32_t, std::string_view) {
        if (first++ == 0) {
            for (int i = 0; i < 10000 && mutations < 10; i++) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    });
    wasithreads::Run run(engine, module, config);

    std::atomic<bool> done{false};
    int started = 0;
    std::thread mutator([&] {
        for (int i = 0; !done; i++) {
            config.on_output(wasithreads::Stdout, [&](int32_t, std::string_view) { later++; });
            config.on_thread_exit([&, i](int32_t, const wasithreads::ThreadExit &) { exits += i >= 0; });
            mutations++;
            if (i % 64 == 0) {  // runs started meanwhile get the callbacks of their start
                wasithreads::run(engine, one_tick, config);
                started++;
            }
        }
    });
    wasithreads::Exit exit = run.wait();
    done = true;
    mutator.join();

    bool ok = exit.kind == wasithreads::Exit::Kind::Code && exit.code == 0 && first == TICKS &&
              later == started && exits == started && mutations >= 10;
    std::printf("first run: %d ticks of %d, %d config changes; %d later runs: %d ticks, %d thread exits\n",
                first.load(), TICKS, mutations.load(), started, later.load(), exits.load());
    std::printf("%d passed, %d failed\n", ok ? 1 : 0, ok ? 0 : 1);
    return ok ? 0 : 1;
}
