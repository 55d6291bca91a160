// The header compiles as C++ and its functions have C linkage.
#include "wasithreads.h"

int main() {
    wt_engine_t *engine = nullptr;
    wt_error_t *err = wt_engine_new(nullptr, &engine);
    if (err) {
        wt_error_free(err);
        return 1;
    }
    wt_engine_free(engine);
    return wt_version() == nullptr;
}
