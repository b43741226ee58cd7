/* libFuzzer target: the model loader on arbitrary bytes.  Every input must
 * load or fail with an error; nothing may crash, read out of bounds, leak or
 * hang.  Built and run by tests/fuzz.sh (clang, ASan + UBSan). */
#include <stddef.h>
#include <stdint.h>

#include "cz-model.h"

int LLVMFuzzerTestOneInput (const uint8_t * data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t * data, size_t size)
{
  GError *err = NULL;
  CzModel *m = cz_model_load_bytes (data, size, "fuzz", &err);
  if ((m == NULL) == (err == NULL))
    __builtin_trap ();          /* exactly one of a model and an error */
  cz_model_free (m);
  g_clear_error (&err);
  return 0;
}
