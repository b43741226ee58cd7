/* cz-topology: the ECCV16 network's layers, once, as data.
 *
 * The model loader checks a file's tensor names and shapes against this
 * table, the network is built from it, and the Python side
 * (models/train/eccv16.py, models/export.py, models/convert/) is tested
 * against it through `cz-predict --dump-topology` (tests/test_training.py).
 *
 * Channel counts are indices into the model's 8 block widths, or one of
 * the two fixed ends.  Tensors, PyTorch layout:
 *   conv   <name>.weight (out, in, k, k), <name>.bias (out)
 *   deconv <name>.weight (in, out, k, k), <name>.bias (out)   (transposed)
 *   bn     bn<b>.mean, .var, .weight, .bias (out)  after the layer's ReLU */
#ifndef CZ_TOPOLOGY_H
#define CZ_TOPOLOGY_H

#define CZ_N_BINS 313
#define CZ_N_BLOCKS 8
#define CZ_N_LAYERS 23
#define CZ_WIDTH_INPUT (-1)     /* one channel: L* */
#define CZ_WIDTH_BINS (-2)      /* the 313 ab bins */

typedef enum {
  CZ_LAYER_CONV,
  CZ_LAYER_DECONV
} CzLayerKind;

typedef struct {
  const char *name;             /* tensor prefix */
  CzLayerKind kind;
  int in, out;                  /* block index 0..7, or CZ_WIDTH_* */
  int k, stride, pad, dil;
  int relu;                     /* max(0, x) after it */
  int bn;                       /* 1..7: batch norm bn<bn> after the ReLU; 0 none */
} CzLayer;

extern const CzLayer cz_layers[CZ_N_LAYERS];

/* The channel count of a layer end for the model's widths. */
static inline int
cz_layer_channels (int which, const int *widths)
{
  return which == CZ_WIDTH_INPUT ? 1 : which == CZ_WIDTH_BINS ? CZ_N_BINS :
      widths[which];
}

#endif
