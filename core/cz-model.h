/* cz-model: the model file (safetensors) and its loader.
 *
 * File layout (https://github.com/huggingface/safetensors), little-endian:
 *
 *   bytes 0..7        u64 N: length of the JSON header
 *   bytes 8..8+N      UTF-8 JSON object:
 *                       "__metadata__": { string: string, ... }
 *                       "<tensor name>": { "dtype": "F32" | "F16",
 *                                          "shape": [d0, d1, ...],
 *                                          "data_offsets": [begin, end] }
 *   bytes 8+N..       the data; offsets are relative to its start
 *
 * Metadata read here (all values are strings, as safetensors requires):
 *   topology     "eccv16"                         (required)
 *   widths       "c1,c2,c3,c4,c5,c6,c7,c8"        (required: block widths)
 *   input        "L-50"                           (required: net input is L* - 50)
 *   net_size     short side the model was trained at, multiple of 8 (required)
 *   temperature  annealed-mean temperature        (optional, default 0.38)
 *   bn_eps       batch-norm epsilon               (optional, default 1e-5)
 *   anything else (provenance, metrics) is kept as text for the user.
 *
 * Tensors: exactly those of the layer table in cz-topology.h, shapes from
 * `widths`, PyTorch layout:
 *   conv{b}_{i}.weight (cout, cin, 3, 3), conv{b}_{i}.bias (cout)
 *       b = 1..7, i = 1..2 for b <= 2, 1..3 otherwise
 *   bn{b}.mean, bn{b}.var, bn{b}.weight, bn{b}.bias (c_b)      b = 1..7
 *   conv8_1.weight (c7, c8, 4, 4), a transposed convolution, conv8_1.bias (c8)
 *   conv8_2.*, conv8_3.* (c8, c8, 3, 3)
 *   conv8_313.weight (313, c8, 1, 1), conv8_313.bias (313): logits
 *
 * Each tensor has its own dtype: the exporter writes weights in F16 and the
 * batch-norm statistics in F32 (running variances overflow F16).  The data
 * ranges tile the data exactly: no overlaps, no gaps, nothing after the last.
 *
 * The file is untrusted: only a regular file is opened; the header's size,
 * nesting and entry count are bounded (below) before it is parsed; no name
 * may appear twice in one object; every length, offset, dtype, shape and
 * name is checked before use, and errors name the file and the problem. */
#ifndef CZ_MODEL_H
#define CZ_MODEL_H

#include <glib.h>
#include <stdint.h>

#include "cz-topology.h"


/* Limits, checked before the JSON parser sees the header (the file is
 * untrusted; json-glib recurses once per nesting level).  A model of the
 * paper's full widths has a 9 KB header of 75 entries nested 3 deep. */
#define CZ_MAX_HEADER (1u << 20)        /* bytes of JSON header */
#define CZ_MAX_DEPTH 4          /* objects and arrays within one another */
#define CZ_MAX_ENTRIES 256      /* members of the top-level object */
#define CZ_MAX_FILE ((guint64) 4 << 30) /* bytes of file */

G_BEGIN_DECLS

#define CZ_MODEL_ERROR (cz_model_error_quark ())
GQuark cz_model_error_quark (void);

typedef enum {
  CZ_MODEL_ERROR_IO,
  CZ_MODEL_ERROR_FORMAT,        /* not a well-formed safetensors file */
  CZ_MODEL_ERROR_METADATA,      /* missing or invalid metadata */
  CZ_MODEL_ERROR_TENSOR         /* missing, extra, mistyped or misshapen tensor */
} CzModelError;

typedef struct {
  char *name;
  int n_dims;
  int64_t shape[4];
  uint64_t begin, end;          /* its bytes in the file's data */
  float *data;                  /* owned, converted to float32 */
} CzTensor;

typedef struct {
  int widths[CZ_N_BLOCKS];
  int net_size;
  float temperature;
  float bn_eps;
  GHashTable *metadata;         /* char* -> char*, all of __metadata__ */
  GHashTable *tensors;          /* name -> CzTensor* */
} CzModel;

/* Loads and validates a model; NULL with @error set on any problem. */
CzModel *cz_model_load (const char *path, GError ** error);

/* Same, from bytes in memory; @what names the source in messages. */
CzModel *cz_model_load_bytes (const uint8_t * data, size_t size,
    const char *what, GError ** error);

void cz_model_free (CzModel * model);

/* The tensor's float32 data; the name must be one the topology has. */
const float *cz_model_tensor (const CzModel * model, const char *name);


G_END_DECLS

#endif
