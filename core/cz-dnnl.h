/* cz-dnnl: the network on oneDNN (Debian's libdnnl, its C API).
 *
 *   input  (1, H, W)    L* - 50, H and W multiples of 8, float32
 *   output (313, H/4, W/4) logits, float32, plain
 *
 * Every layer of cz_layers (cz-topology.h) is one oneDNN primitive: the 3x3
 * and 1x1 convolutions and the 4x4 transposed one, each with its ReLU and its
 * block's batch norm (a per-channel scale and shift after the ReLU) fused as
 * post-ops, activations kept in oneDNN's blocked layouts from the first layer
 * to the last.  In bf16, weights and activations are bfloat16 (the logits
 * float32); oneDNN computes them natively on CPUs with AVX512-BF16 or AMX,
 * and there the 3x3 stride-1 layers with enough work run instead by
 * Winograd F(2x2, 3x3): transforms of our own (cz-wino-bf16.h) around one
 * batched oneDNN matmul, 4 multiplies an output instead of 9.
 * Primitives are made once per input size, for one thread and for the most
 * threads allowed (oneDNN fixes a primitive's thread count when it is made),
 * so a frame may run on either; the output is the same for both. */
#ifndef CZ_DNNL_H
#define CZ_DNNL_H

#include "cz-model.h"

G_BEGIN_DECLS

typedef struct CzDnnlNet CzDnnlNet;

/* Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), as
 * oneDNN sees it. */
gboolean cz_dnnl_bf16_native (void);

/* Whether oneDNN computes bfloat16 here at all, natively or emulated (on
 * AVX-512); not on an AVX2 CPU. */
gboolean cz_dnnl_bf16_available (void);

/* The net on the model's weights (the model must outlive it); bf16 selects
 * bfloat16 weights and activations.  NULL with @error when oneDNN cannot
 * make it. */
CzDnnlNet *cz_dnnl_net_new (const CzModel * model, gboolean bf16,
    GError ** error);
void cz_dnnl_net_free (CzDnnlNet * net);

/* Makes the primitives and buffers for an input of h x w (multiples of 8),
 * for runs on 1 or max_threads threads.  Cheap when nothing changed. */
gboolean cz_dnnl_net_prepare (CzDnnlNet * net, int h, int w,
    int max_threads, GError ** error);

/* Runs the net on in (1, h, w) as prepared, on n_threads threads (1 or
 * max_threads); returns its logits (313, h/4, w/4), owned by the net and
 * valid until the next call. */
const float *cz_dnnl_net_forward (CzDnnlNet * net, const float *in,
    int n_threads);

/* In bf16, the 3x3 convolutions with enough work run by Winograd F(2x2,
 * 3x3) around oneDNN's matrix product (cz-wino-bf16.h); off, every layer is
 * oneDNN's direct convolution.  On by default; takes effect at the next
 * prepare. */
void cz_dnnl_net_set_winograd (CzDnnlNet * net, gboolean on);

/* oneDNN's name of the implementation each layer runs, for logs. */
const char *cz_dnnl_net_describe (const CzDnnlNet * net);

G_END_DECLS

#endif
