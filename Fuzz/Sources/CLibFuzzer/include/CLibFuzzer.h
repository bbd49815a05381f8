#ifndef PARLEY_CLIBFUZZER_H
#define PARLEY_CLIBFUZZER_H

#include <stddef.h>
#include <stdint.h>

// libFuzzer's driver (compiler-rt FuzzerInterface.h). SwiftPM renames each
// executable's `main` to `<module>_main`, so the targets call the driver
// themselves instead of linking libFuzzer's own `main`.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
