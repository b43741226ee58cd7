/* cz-net: the ECCV16 network, forward pass only.
 *
 *   input  (1, H, W)    L* - 50, H and W multiples of 8
 *   output (313, H/4, W/4) logits over the ab bins
 *
 * The layers are those of cz_layers (cz-topology.h); widths come from the
 * model. */
#ifndef CZ_NET_H
#define CZ_NET_H

#include "cz-model.h"
#include "cz-ops.h"

/* The layers of cz_layers (cz-topology.h), in its order. */
typedef struct {
  CzConv conv[CZ_N_LAYERS];
  int relu[CZ_N_LAYERS];
  int bn_after[CZ_N_LAYERS];        /* index of the block's BN, or -1 */
  int deconv_index;                 /* conv[] index of the transposed conv */
  int n_convs;
  float *wino[CZ_N_LAYERS];         /* Winograd weights, made when first used */
  int use_wino[CZ_N_LAYERS];        /* for the prepared size */
  int no_winograd;
  float *bn_scale[7], *bn_shift[7]; /* (c_b) folded mean/var/gamma/beta */

  /* work buffers for the current input size */
  int h, w;
  float *act[2];
  float *scratch;
} CzNet;

/* The network borrows the model's weights: the model must outlive it.
 * Never NULL (small allocations abort on failure, GLib's convention); the
 * large buffers come from cz_net_prepare(), which fails cleanly. */
CzNet *cz_net_new (const CzModel * model);
void cz_net_free (CzNet * net);

/* Run every convolution by im2col + GEMM (the reference path), dropping
 * the Winograd weights; call before cz_net_prepare(). */
void cz_net_disable_winograd (CzNet * net);

/* Size the work buffers for an input of h x w (multiples of 8); FALSE when
 * out of memory. Cheap when the size is unchanged. */
gboolean cz_net_prepare (CzNet * net, int h, int w);

/* Runs the network on in (1, h, w) as prepared; returns its logits
 * (313, h/4, w/4), owned by the net and valid until the next call. */
const float *cz_net_forward (CzNet * net, const float *in, int n_threads);

#endif
