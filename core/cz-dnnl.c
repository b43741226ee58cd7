#define _POSIX_C_SOURCE 200809L /* posix_memalign */

#include "cz-dnnl.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl.h>

#include "cz-topology.h"
#include "cz-ops.h"
#include "cz-wino-bf16.h"

/* One layer: its primitive for each thread count ([0] one thread, [1] the
 * most), its weights in the layout the primitive chose, and the memory of
 * its output. */
typedef struct
{
  dnnl_primitive_t prim[2];
  dnnl_memory_t weights, bias, scale, shift;    /* scale/shift: batch norm */
  dnnl_memory_t dst;
  /* the transposed conv runs as a 2x2 conv to its 4 output phases (dst, in
   * the net's channel blocks), interleaved into `shuffled` (the same
   * blocks, zero padded) */
  dnnl_memory_t shuffled;
  void *shuffled_buf;
  int h, w;                     /* its input size */
  /* a 3x3 conv by Winograd (cz-wino-bf16): prim is the matrix product of
   * the transformed input (wv) and weights into wm, both in the net's
   * shared buffers; the bias, ReLU and norm go into the output transform */
  gboolean wino;
  int chunk;                    /* tiles a product takes at a time */
  dnnl_memory_t wv, wm;
  const float *wino_bias, *wino_scale, *wino_shift;
  /* a float32 layer before a bf16 one (the first): its output converted
   * to bf16 nChw16c for the next */
  dnnl_primitive_t cast[2];
  dnnl_memory_t cast_dst;
} Layer;

struct CzDnnlNet
{
  const CzModel *model;
  gboolean bf16;
  /* the channel block of the layouts the net forces (the transposed conv's
   * phases, casts, Winograd): the CPU's vector, 16 floats on AVX-512, 8 on
   * AVX2.  nChw16c on AVX2 had no JIT convolution: the four layers from the
   * transposed conv on ran oneDNN's reference code, 3.9 s a 320x240 frame */
  int blk;
  dnnl_engine_t engine;
  dnnl_stream_t stream;
  float *bn_scale[7], *bn_shift[7];     /* (c_b) folded mean/var/gamma/beta */
  float *phase_w, *phase_b;     /* the transposed conv as a 2x2 conv */

  /* for the prepared size */
  int h, w, max_threads;
  Layer layer[CZ_N_LAYERS];
  dnnl_memory_t in;             /* the caller's f32 plane, layer 0's input */
  dnnl_memory_t out;            /* the logits, plain */
  dnnl_primitive_t out_reorder[2];      /* the last layer's layout -> plain */
  void *buf[2];                 /* activations, ping-pong */
  void *wino_v, *wino_m;        /* the Winograd layers' products */
  gboolean no_winograd;
  float *logits;
  GString *describe;
};

#define CHECK(call, what) do { dnnl_status_t st_ = (call); \
    if (st_ != dnnl_success) { \
      g_set_error (error, CZ_MODEL_ERROR, CZ_MODEL_ERROR_IO, \
          "oneDNN could not %s (status %d)", what, (int) st_); \
      goto fail; } } while (0)

gboolean
cz_dnnl_bf16_native (void)
{
  const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa ();
  return isa == dnnl_cpu_isa_avx512_core_bf16
      || isa == dnnl_cpu_isa_avx512_core_amx;
}

/* The channel block of the CPU's vector: 16 floats on AVX-512, 8 below. */
static int
vector_block (void)
{
  const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa ();
  return (isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core ? 16 : 8;
}

/* The layout of the net's channel blocks. */
static dnnl_format_tag_t
blk_tag (const CzDnnlNet * n)
{
  return n->blk == 16 ? dnnl_nChw16c : dnnl_nChw8c;
}

/* Whether oneDNN makes a bf16 convolution on this CPU at all: natively
 * (above) or emulated, as it does on AVX-512 CPUs; on an AVX2 one (AMD Zen 3)
 * it has none, and every layer of a bf16 net failed to be made. */
gboolean
cz_dnnl_bf16_available (void)
{
  dnnl_engine_t engine;
  if (dnnl_engine_create (&engine, dnnl_cpu, 0) != dnnl_success)
    return FALSE;
  const dnnl_dims_t act = { 1, 16, 8, 8 }, wei = { 16, 16, 3, 3 };
  const dnnl_dims_t strides = { 1, 1 }, pad = { 1, 1 };
  dnnl_memory_desc_t src_md, wei_md, dst_md;
  dnnl_memory_desc_init_by_tag (&src_md, 4, act, dnnl_bf16,
      dnnl_format_tag_any);
  dnnl_memory_desc_init_by_tag (&wei_md, 4, wei, dnnl_bf16,
      dnnl_format_tag_any);
  dnnl_memory_desc_init_by_tag (&dst_md, 4, act, dnnl_bf16,
      dnnl_format_tag_any);
  dnnl_convolution_desc_t d;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_status_t st = dnnl_convolution_forward_desc_init (&d,
      dnnl_forward_inference, dnnl_convolution_direct, &src_md, &wei_md, NULL,
      &dst_md, strides, pad, pad);
  if (st == dnnl_success)
    st = dnnl_primitive_desc_create (&pd, &d, NULL, engine, NULL);
  if (pd)
    dnnl_primitive_desc_destroy (pd);
  dnnl_engine_destroy (engine);
  return st == dnnl_success;
}

static void
free_size (CzDnnlNet * n)
{
  for (int i = 0; i < CZ_N_LAYERS; i++) {
    Layer *l = &n->layer[i];
    if (l->prim[0] && l->prim[0] != l->prim[1])
      dnnl_primitive_destroy (l->prim[0]);
    if (l->prim[1])
      dnnl_primitive_destroy (l->prim[1]);
    for (int k = 0; k < 2; k++)
      if (l->cast[k])
        dnnl_primitive_destroy (l->cast[k]);
    dnnl_memory_t *mems[] = { &l->weights, &l->bias, &l->scale, &l->shift,
      &l->dst, &l->shuffled, &l->wv, &l->wm, &l->cast_dst
    };
    for (guint k = 0; k < G_N_ELEMENTS (mems); k++)
      if (*mems[k])
        dnnl_memory_destroy (*mems[k]);
    free (l->shuffled_buf);
    memset (l, 0, sizeof *l);
  }
  for (int k = 0; k < 2; k++) {
    if (n->out_reorder[k])
      dnnl_primitive_destroy (n->out_reorder[k]);
    n->out_reorder[k] = NULL;
    free (n->buf[k]);
    n->buf[k] = NULL;
  }
  free (n->wino_v);
  free (n->wino_m);
  n->wino_v = n->wino_m = NULL;
  if (n->in)
    dnnl_memory_destroy (n->in);
  n->in = NULL;
  if (n->out)
    dnnl_memory_destroy (n->out);
  n->out = NULL;
  free (n->logits);
  n->logits = NULL;
  if (n->describe)
    g_string_free (n->describe, TRUE);
  n->describe = NULL;
  n->h = n->w = 0;
}

void
cz_dnnl_net_free (CzDnnlNet * n)
{
  if (!n)
    return;
  free_size (n);
  for (int b = 0; b < 7; b++) {
    g_free (n->bn_scale[b]);
    g_free (n->bn_shift[b]);
  }
  g_free (n->phase_w);
  g_free (n->phase_b);
  if (n->stream)
    dnnl_stream_destroy (n->stream);
  if (n->engine)
    dnnl_engine_destroy (n->engine);
  g_free (n);
}

static const float *
tensor (const CzModel * m, const char *layer, const char *what)
{
  char name[32];
  g_snprintf (name, sizeof name, "%s.%s", layer, what);
  return cz_model_tensor (m, name);
}

/* oneDNN's transposed convolution ran 8x slower than a convolution of the
 * same work (2.5 of 8 ms a frame).  A 4x4 stride-2 pad-1 transposed conv is
 * a 2x2 conv on the input padded by 1 giving, for each output phase
 * (py, px), the pixels (2i + py, 2j + px): phase py takes input rows i - 1, i
 * (py = 0: kernel rows 3, 1) or i, i + 1 (py = 1: kernel rows 2, 0), the
 * same for columns.  k[(py, px, co), ci, dy, dx] = w[ci, co, T[py][dy],
 * T[px][dx]] with T = {{3, 1}, {2, 0}}; the bias repeats per phase. */
static void
phase_weights (CzDnnlNet * n, const CzLayer * l)
{
  static const int taps[2][2] = { {3, 1}, {2, 0} };
  const int cin = cz_layer_channels (l->in, n->model->widths);
  const int cout = cz_layer_channels (l->out, n->model->widths);
  const float *w = tensor (n->model, l->name, "weight");
  const float *b = tensor (n->model, l->name, "bias");
  g_assert (l->k == 4 && l->stride == 2 && l->pad == 1);
  n->phase_w = g_new (float, (size_t) 4 * cout * cin * 4);
  n->phase_b = g_new (float, 4 * cout);
  for (int p = 0; p < 4; p++)
    for (int co = 0; co < cout; co++) {
      n->phase_b[p * cout + co] = b[co];
      for (int ci = 0; ci < cin; ci++)
        for (int dy = 0; dy < 2; dy++)
          for (int dx = 0; dx < 2; dx++)
            n->phase_w[(((size_t) (p * cout + co) * cin + ci) * 2 + dy) * 2
                + dx] = w[(((size_t) ci * cout + co) * 4
                    + taps[p / 2][dy]) * 4 + taps[p % 2][dx]];
    }
}

CzDnnlNet *
cz_dnnl_net_new (const CzModel * m, gboolean bf16, GError ** error)
{
  CzDnnlNet *n = g_new0 (CzDnnlNet, 1);
  n->model = m;
  n->bf16 = bf16;
  n->blk = bf16 ? 16 : vector_block ();
  n->no_winograd = cz_winograd_disabled ();
  CHECK (dnnl_engine_create (&n->engine, dnnl_cpu, 0), "create a CPU engine");
  CHECK (dnnl_stream_create (&n->stream, n->engine, dnnl_stream_default_flags),
      "create a stream");
  for (int i = 0; i < CZ_N_LAYERS; i++) {
    const CzLayer *l = &cz_layers[i];
    if (l->kind == CZ_LAYER_DECONV)
      phase_weights (n, l);
    if (!l->bn)
      continue;
    /* y = gamma * (x - mean) / sqrt(var + eps) + beta = x * scale + shift */
    char name[16];
    const int c = cz_layer_channels (l->out, m->widths), b = l->bn - 1;
#define BN(f) (g_snprintf (name, sizeof name, "bn%d." f, l->bn), \
      cz_model_tensor (m, name))
    const float *mean = BN ("mean"), *var = BN ("var");
    const float *gamma = BN ("weight"), *beta = BN ("bias");
#undef BN
    n->bn_scale[b] = g_new (float, c);
    n->bn_shift[b] = g_new (float, c);
    for (int k = 0; k < c; k++) {
      n->bn_scale[b][k] = gamma[k] / sqrtf (var[k] + m->bn_eps);
      n->bn_shift[b][k] = beta[k] - mean[k] * n->bn_scale[b][k];
    }
  }
  return n;
fail:
  cz_dnnl_net_free (n);
  return NULL;
}

static void
md_plain (dnnl_memory_desc_t * md, int ndims, const dnnl_dims_t dims,
    dnnl_data_type_t dt, dnnl_format_tag_t tag)
{
  dnnl_memory_desc_init_by_tag (md, ndims, dims, dt, tag);
}

/* The data type of layer i's input and weights: bf16 but for the first
 * layer, float32 there.  The first layer sees L* itself (bf16 keeps 8 bits
 * of 50.0 +- 50) and its edge filters subtract nearly equal products, so
 * rounding its input and weights moved the colours more than all the other
 * layers together: on the 250 dev photos against the fp32 reference, |ab|
 * moved 0.054 on average and 1.09 at the 99.9th percentile with every
 * layer in bf16, 0.024 and 0.34 with the first in float32 (a model trained
 * with lambda 0.75: 0.109 / 2.99 against 0.036 / 0.66), for ~1 % more
 * time at 168x128 (the last three layers in float32 changed nothing). */
static dnnl_data_type_t
layer_type (const CzDnnlNet * n, int i)
{
  return n->bf16 && i > 0 ? dnnl_bf16 : dnnl_f32;
}

/* Whether layer i computes in float32 and hands bf16 to the next: oneDNN
 * has no float32 convolution with a bf16 output, so a reorder follows. */
static gboolean
casts (const CzDnnlNet * n, int i)
{
  return i + 1 < CZ_N_LAYERS && layer_type (n, i) != layer_type (n, i + 1);
}

/* The memory the layer after layer i reads. */
static dnnl_memory_t
layer_out (const Layer * l)
{
  return l->cast_dst ? l->cast_dst : l->shuffled ? l->shuffled : l->dst;
}

/* Makes the primitive descriptor of layer i for src_md (concrete), with its
 * ReLU and batch norm as post-ops; dst and weights in the layouts oneDNN
 * prefers (float32 for the last layer). */
static dnnl_status_t
layer_pd (CzDnnlNet * n, int i, const dnnl_memory_desc_t * src_md, int h,
    int w, int *ho, int *wo, dnnl_primitive_desc_t * pd)
{
  const CzLayer *l = &cz_layers[i];
  const int *widths = n->model->widths;
  const gboolean deconv = l->kind == CZ_LAYER_DECONV;
  const int cin = cz_layer_channels (l->in, widths);
  /* the transposed conv: a 2x2 conv to its 4 phases (phase_weights) */
  const int cout = cz_layer_channels (l->out, widths) * (deconv ? 4 : 1);
  const int k = deconv ? 2 : l->k, stride = deconv ? 1 : l->stride;
  const gboolean last = i == CZ_N_LAYERS - 1;
  const dnnl_data_type_t dt = layer_type (n, i);
  const dnnl_data_type_t dst_dt = last || casts (n, i) ? dnnl_f32 :
      layer_type (n, i + 1);
  *ho = (h + 2 * l->pad - l->dil * (k - 1) - 1) / stride + 1;
  *wo = (w + 2 * l->pad - l->dil * (k - 1) - 1) / stride + 1;
  dnnl_memory_desc_t wei_md, bias_md, dst_md;
  const dnnl_dims_t wdims = { cout, cin, k, k };
  const dnnl_dims_t bdims = { cout };
  const dnnl_dims_t ddims = { 1, cout, *ho, *wo };
  md_plain (&wei_md, 4, wdims, dt, dnnl_format_tag_any);
  md_plain (&bias_md, 1, bdims, dnnl_f32, dnnl_x);
  /* the interleave of the phases and the Winograd input transform read
   * channel blocks */
  md_plain (&dst_md, 4, ddims, dst_dt, deconv || casts (n, i) || (!last
          && n->layer[i + 1].wino) ? blk_tag (n) : dnnl_format_tag_any);
  const dnnl_dims_t strides = { stride, stride };
  const dnnl_dims_t dil = { l->dil - 1, l->dil - 1 };   /* 0: none */
  const dnnl_dims_t pad = { l->pad, l->pad };

  dnnl_post_ops_t po = NULL;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_status_t st = dnnl_post_ops_create (&po);
  if (st == dnnl_success && l->relu)
    st = dnnl_post_ops_append_eltwise (po, 1.0f, dnnl_eltwise_relu, 0.f, 0.f);
  if (st == dnnl_success && l->bn) {
    dnnl_memory_desc_t chan;
    const dnnl_dims_t cdims = { 1, cout, 1, 1 };
    md_plain (&chan, 4, cdims, dnnl_f32, dnnl_nchw);
    st = dnnl_post_ops_append_binary (po, dnnl_binary_mul, &chan);
    if (st == dnnl_success)
      st = dnnl_post_ops_append_binary (po, dnnl_binary_add, &chan);
  }
  if (st == dnnl_success)
    st = dnnl_primitive_attr_create (&attr);
  if (st == dnnl_success)
    st = dnnl_primitive_attr_set_post_ops (attr, po);
  if (st == dnnl_success) {
    dnnl_convolution_desc_t d;
    st = dnnl_dilated_convolution_forward_desc_init (&d,
        dnnl_forward_inference, dnnl_convolution_direct, src_md, &wei_md,
        &bias_md, &dst_md, strides, dil, pad, pad);
    if (st == dnnl_success)
      st = dnnl_primitive_desc_create (pd, &d, attr, n->engine, NULL);
  }
  if (attr)
    dnnl_primitive_attr_destroy (attr);
  if (po)
    dnnl_post_ops_destroy (po);
  return st;
}

/* Winograd pays where the layer is big enough to hide its transforms:
 * measured on 2 cores of an AMD Zen 4 (AVX512-BF16), a 128->128 layer at
 * 21x16 (cin cout h w = 5.5e6) took 0.17 ms against 0.21 direct, a 32->64 one
 * at 42x32 (2.8e6) 0.16 against 0.11. */
#define WINO_MIN_WORK (1u << 22)

/* Whether layer i, on an h x w input, runs by Winograd (cz-wino-bf16). */
static gboolean
wino_applies (const CzDnnlNet * n, int i, int h, int w)
{
  const CzLayer *l = &cz_layers[i];
  const int cin = cz_layer_channels (l->in, n->model->widths);
  const int cout = cz_layer_channels (l->out, n->model->widths);
  const size_t work = (size_t) cin * cout * h * w;
  /* where bf16 is emulated (precision forced), oneDNN's matmul may fall to
   * a reference kernel: Winograd only where the CPU computes bf16 */
  return layer_type (n, i) == dnnl_bf16 && !n->no_winograd
      && cz_dnnl_bf16_native ()
      && l->kind == CZ_LAYER_CONV && l->k == 3
      && l->stride == 1 && l->pad == l->dil && cin % 16 == 0
      && cout % 16 == 0 && i + 1 < CZ_N_LAYERS && work >= WINO_MIN_WORK;
}

/* The transformed input and products of a Winograd layer take (2 cin +
 * 4 cout) 16 bytes a tile; above this, the layer runs in chunks of tiles.
 * Measured on 2 cores (AMD Zen 4) with the full net at 640x480: 8 MiB
 * chunks 617 ms a pass and 355 MB peak, 16 MiB 626 ms / 366 MB, 32 MiB
 * 670 ms / 384 MB, whole layers 695 ms / 541 MB; at 224x224, 16 MiB was
 * the fastest (89 ms against 93 for 32 MiB and 104 whole). */
#define WINO_MAX_SCRATCH ((size_t) 16 << 20)

/* The tiles of a chunk of Winograd layer i on an h x w input: all, or
 * equal chunks (a multiple of 16) under WINO_MAX_SCRATCH. */
static int
wino_chunk (const CzDnnlNet * n, int i, int h, int w)
{
  const CzLayer *l = &cz_layers[i];
  const size_t per_tile = (size_t) CZ_WINO2_POS * (2 * cz_layer_channels
      (l->in, n->model->widths) + 4 * cz_layer_channels (l->out,
          n->model->widths));
  const size_t tiles = cz_wino2_tiles (h, w, l->dil);
  const size_t chunks = (tiles * per_tile + WINO_MAX_SCRATCH - 1)
      / WINO_MAX_SCRATCH;
  const size_t chunk = ((tiles + chunks - 1) / chunks + 15) / 16 * 16;
  return (int) MIN (chunk, tiles);
}

/* The matrix product of a chunk of Winograd layer i: (16, chunk, cin) x
 * (16, cin, cout) -> (16, chunk, cout) float32, the weights in the layout
 * oneDNN prefers. */
static dnnl_status_t
wino_pd (CzDnnlNet * n, int i, int chunk, dnnl_primitive_desc_t * pd)
{
  const CzLayer *l = &cz_layers[i];
  const int cin = cz_layer_channels (l->in, n->model->widths);
  const int cout = cz_layer_channels (l->out, n->model->widths);
  const dnnl_dims_t sdims = { CZ_WINO2_POS, chunk, cin };
  const dnnl_dims_t wdims = { CZ_WINO2_POS, cin, cout };
  const dnnl_dims_t ddims = { CZ_WINO2_POS, chunk, cout };
  dnnl_memory_desc_t src_md, wei_md, dst_md;
  md_plain (&src_md, 3, sdims, dnnl_bf16, dnnl_abc);
  md_plain (&wei_md, 3, wdims, dnnl_bf16, dnnl_format_tag_any);
  md_plain (&dst_md, 3, ddims, dnnl_f32, dnnl_abc);
  dnnl_matmul_desc_t d;
  dnnl_status_t st = dnnl_matmul_desc_init (&d, &src_md, &wei_md, NULL,
      &dst_md);
  if (st == dnnl_success)
    st = dnnl_primitive_desc_create (pd, &d, NULL, n->engine, NULL);
  return st;
}

/* Copies plain float32 data into a memory of any layout and type. */
static dnnl_status_t
fill (CzDnnlNet * n, dnnl_memory_t dst, int ndims, const dnnl_dims_t dims,
    dnnl_format_tag_t tag, const float *data)
{
  dnnl_memory_desc_t md;
  const dnnl_memory_desc_t *dst_md;
  dnnl_memory_t src = NULL;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_primitive_t r = NULL;
  md_plain (&md, ndims, dims, dnnl_f32, tag);
  dnnl_status_t st = dnnl_memory_get_memory_desc (dst, &dst_md);
  if (st == dnnl_success)
    st = dnnl_memory_create (&src, &md, n->engine, (void *) data);
  if (st == dnnl_success)
    st = dnnl_reorder_primitive_desc_create (&pd, &md, n->engine, dst_md,
        n->engine, NULL);
  if (st == dnnl_success)
    st = dnnl_primitive_create (&r, pd);
  if (st == dnnl_success) {
    dnnl_exec_arg_t args[] = { {DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}
    };
    st = dnnl_primitive_execute (r, n->stream, 2, args);
  }
  if (st == dnnl_success)
    st = dnnl_stream_wait (n->stream);
  if (r)
    dnnl_primitive_destroy (r);
  if (pd)
    dnnl_primitive_desc_destroy (pd);
  if (src)
    dnnl_memory_destroy (src);
  return st;
}

/* Makes the primitives of one thread count: [0] one thread, [1] max.  The
 * first pass ([1]) also makes the memories; the second must agree with it
 * on every layout. */
static gboolean
make_primitives (CzDnnlNet * n, int k, GError ** error)
{
  const int *widths = n->model->widths;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_memory_desc_t in_md;
  const dnnl_dims_t in_dims = { 1, 1, n->h, n->w };
  md_plain (&in_md, 4, in_dims, layer_type (n, 0), dnnl_nchw);
  if (k == 1) {
    CHECK (dnnl_memory_create (&n->in, &in_md, n->engine, DNNL_MEMORY_NONE),
        "make the input");
    n->describe = g_string_new (NULL);
  }

  const dnnl_memory_desc_t *src_md = &in_md;
  size_t buf_size = 0, v_size = 0, m_size = 0;
  int h = n->h, w = n->w;
  for (int i = 0; i < CZ_N_LAYERS; i++) {
    const CzLayer *cl = &cz_layers[i];
    Layer *l = &n->layer[i];
    const int cin = cz_layer_channels (cl->in, widths);
    const int cout = cz_layer_channels (cl->out, widths);
    int ho = h, wo = w;
    dnnl_memory_desc_t act_md;  /* a Winograd layer's output */
    if (l->wino) {
      const dnnl_dims_t adims = { 1, cout, h, w };
      const dnnl_dims_t idims = { 1, cin, h, w };
      dnnl_memory_desc_t want;
      md_plain (&act_md, 4, adims, layer_type (n, i + 1), dnnl_nChw16c);
      md_plain (&want, 4, idims, dnnl_bf16, dnnl_nChw16c);
      /* the layer before gives nChw16c (layer_pd) */
      g_assert (dnnl_memory_desc_equal (src_md, &want));
      CHECK (wino_pd (n, i, l->chunk, &pd), "make a Winograd layer");
    } else
      CHECK (layer_pd (n, i, src_md, h, w, &ho, &wo, &pd), "make a layer");
    CHECK (dnnl_primitive_create (&l->prim[k], pd), "make a primitive");
    const dnnl_memory_desc_t *wei_md = dnnl_primitive_desc_query_md (pd,
        dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *dst_md = l->wino ? &act_md :
        dnnl_primitive_desc_query_md (pd, dnnl_query_dst_md, 0);
    if (casts (n, i)) {
      dnnl_memory_desc_t cast_md;
      const dnnl_dims_t cdims = { 1, cout, ho, wo };
      md_plain (&cast_md, 4, cdims, layer_type (n, i + 1), dnnl_nChw16c);
      dnnl_primitive_desc_t cast_pd;
      dnnl_status_t st = dnnl_reorder_primitive_desc_create (&cast_pd, dst_md,
          n->engine, &cast_md, n->engine, NULL);
      if (st == dnnl_success) {
        st = dnnl_primitive_create (&l->cast[k], cast_pd);
        dnnl_primitive_desc_destroy (cast_pd);
      }
      CHECK (st, "make a reorder to bf16");
      if (k == 1)
        CHECK (dnnl_memory_create (&l->cast_dst, &cast_md, n->engine,
                DNNL_MEMORY_NONE), "make an activation");
      buf_size = MAX (buf_size, dnnl_memory_desc_get_size (&cast_md));
    }
    if (k == 1) {
      const char *impl = NULL;
      dnnl_primitive_desc_query (pd, dnnl_query_impl_info_str, 0, &impl);
      if (l->wino)
        g_string_append_printf (n->describe, " %s:winograd2x2/%d+%s",
            cl->name, l->chunk, impl ? impl : "?");
      else
        g_string_append_printf (n->describe, "%s%s:%s", i ? " " : "",
            cl->name, impl ? impl : "?");
    }
    if (k == 1 && l->wino) {
      float *u = g_try_new (float, (size_t) CZ_WINO2_POS * cin * cout);
      if (!u) {
        g_set_error (error, CZ_MODEL_ERROR, CZ_MODEL_ERROR_IO,
            "out of memory for the Winograd weights of %s", cl->name);
        goto fail;
      }
      cz_wino2_weights (tensor (n->model, cl->name, "weight"), cout, cin, u);
      const dnnl_dims_t wdims = { CZ_WINO2_POS, cin, cout };
      dnnl_status_t st = dnnl_memory_create (&l->weights, wei_md, n->engine,
          DNNL_MEMORY_ALLOCATE);
      if (st == dnnl_success)
        st = fill (n, l->weights, 3, wdims, dnnl_abc, u);
      g_free (u);
      CHECK (st, "convert Winograd weights");
      const dnnl_memory_desc_t *v_md = dnnl_primitive_desc_query_md (pd,
          dnnl_query_src_md, 0);
      const dnnl_memory_desc_t *m_md = dnnl_primitive_desc_query_md (pd,
          dnnl_query_dst_md, 0);
      CHECK (dnnl_memory_create (&l->wv, v_md, n->engine, DNNL_MEMORY_NONE),
          "make a Winograd input");
      CHECK (dnnl_memory_create (&l->wm, m_md, n->engine, DNNL_MEMORY_NONE),
          "make a Winograd product");
      v_size = MAX (v_size, dnnl_memory_desc_get_size (v_md));
      m_size = MAX (m_size, dnnl_memory_desc_get_size (m_md));
      l->wino_bias = tensor (n->model, cl->name, "bias");
      if (cl->bn) {
        l->wino_scale = n->bn_scale[cl->bn - 1];
        l->wino_shift = n->bn_shift[cl->bn - 1];
      }
      l->h = h;
      l->w = w;
      CHECK (dnnl_memory_create (&l->dst, dst_md, n->engine,
              DNNL_MEMORY_NONE), "make an activation");
      buf_size = MAX (buf_size, dnnl_memory_desc_get_size (dst_md));
    } else if (k == 1) {
      const gboolean deconv = cl->kind == CZ_LAYER_DECONV;
      const int kk = deconv ? 2 : cl->k, co = deconv ? 4 * cout : cout;
      const dnnl_dims_t wdims = { co, cin, kk, kk };
      const dnnl_dims_t bdims = { co };
      CHECK (dnnl_memory_create (&l->weights, wei_md, n->engine,
              DNNL_MEMORY_ALLOCATE), "allocate weights");
      CHECK (fill (n, l->weights, 4, wdims, dnnl_oihw, deconv ? n->phase_w
              : tensor (n->model, cl->name, "weight")), "convert weights");
      dnnl_memory_desc_t bias_md;
      md_plain (&bias_md, 1, bdims, dnnl_f32, dnnl_x);
      CHECK (dnnl_memory_create (&l->bias, &bias_md, n->engine,
              deconv ? n->phase_b : (void *) tensor (n->model, cl->name,
                  "bias")), "wrap a bias");
      if (deconv) {
        dnnl_memory_desc_t sh_md;
        const dnnl_dims_t sdims = { 1, cout, 2 * h, 2 * w };
        md_plain (&sh_md, 4, sdims, layer_type (n, i + 1), blk_tag (n));
        const size_t size = dnnl_memory_desc_get_size (&sh_md);
        if (posix_memalign (&l->shuffled_buf, 64, size)) {
          l->shuffled_buf = NULL;
          g_set_error (error, CZ_MODEL_ERROR, CZ_MODEL_ERROR_IO,
              "out of memory for a %dx%d net input", n->w, n->h);
          goto fail;
        }
        memset (l->shuffled_buf, 0, size);      /* the channel padding */
        CHECK (dnnl_memory_create (&l->shuffled, &sh_md, n->engine,
                l->shuffled_buf), "make the interleaved phases");
        l->h = h;
        l->w = w;
      }
      if (cl->bn) {
        dnnl_memory_desc_t chan;
        const dnnl_dims_t cdims = { 1, cout, 1, 1 };
        md_plain (&chan, 4, cdims, dnnl_f32, dnnl_nchw);
        CHECK (dnnl_memory_create (&l->scale, &chan, n->engine,
                n->bn_scale[cl->bn - 1]), "wrap a scale");
        CHECK (dnnl_memory_create (&l->shift, &chan, n->engine,
                n->bn_shift[cl->bn - 1]), "wrap a shift");
      }
      CHECK (dnnl_memory_create (&l->dst, dst_md, n->engine,
              DNNL_MEMORY_NONE), "make an activation");
      buf_size = MAX (buf_size, dnnl_memory_desc_get_size (dst_md));
    } else {
      const dnnl_memory_desc_t *want_w, *want_d;
      dnnl_memory_get_memory_desc (l->weights, &want_w);
      dnnl_memory_get_memory_desc (l->dst, &want_d);
      if (!dnnl_memory_desc_equal (wei_md, want_w)
          || !dnnl_memory_desc_equal (dst_md, want_d)) {
        /* another layout on one thread: run those frames on the team's.
         * The layer's cast (made with the team's dst) stays right: the
         * team's primitive writes that dst, and casts() forces nChw16c
         * for a cast layer's output, so its one-thread dst agrees too. */
        dnnl_primitive_destroy (l->prim[0]);
        l->prim[0] = l->prim[1];
        dnnl_primitive_desc_destroy (pd);
        pd = NULL;
        dnnl_memory_get_memory_desc (layer_out (l), &src_md);
        h = l->shuffled ? 2 * h : ho;
        w = l->shuffled ? 2 * w : wo;
        continue;
      }
    }
    dnnl_primitive_desc_destroy (pd);
    pd = NULL;
    dnnl_memory_get_memory_desc (layer_out (l), &src_md);
    h = l->shuffled ? 2 * h : ho;
    w = l->shuffled ? 2 * w : wo;
  }
  if (k == 1) {
    const size_t q = (size_t) CZ_N_BINS * (n->h / 4) * (n->w / 4);
    for (int b = 0; b < 2; b++)
      if (posix_memalign (&n->buf[b], 64, MAX (buf_size, 64)))
        n->buf[b] = NULL;
    if (posix_memalign ((void **) &n->logits, 64, q * sizeof (float)))
      n->logits = NULL;
    if (v_size && posix_memalign (&n->wino_v, 64, v_size))
      n->wino_v = NULL;
    if (n->wino_v)              /* a last chunk leaves rows unset */
      memset (n->wino_v, 0, v_size);
    if (v_size && posix_memalign (&n->wino_m, 64, m_size))
      n->wino_m = NULL;
    if (!n->buf[0] || !n->buf[1] || !n->logits || (v_size && (!n->wino_v
                || !n->wino_m))) {
      g_set_error (error, CZ_MODEL_ERROR, CZ_MODEL_ERROR_IO,
          "out of memory for a %dx%d net input", n->w, n->h);
      goto fail;
    }
    for (int i = 0; i < CZ_N_LAYERS; i++) {
      Layer *l = &n->layer[i];
      /* a cast writes where the layer would have: the layer writes the
       * other buffer, free only because the first layer reads the caller's
       * plane (casts () holds for it alone) */
      g_assert (!l->cast_dst || i == 0);
      dnnl_memory_set_data_handle (l->dst, n->buf[(i + !!l->cast_dst) % 2]);
      if (l->cast_dst)
        dnnl_memory_set_data_handle (l->cast_dst, n->buf[i % 2]);
      if (l->wino) {
        dnnl_memory_set_data_handle (l->wv, n->wino_v);
        dnnl_memory_set_data_handle (l->wm, n->wino_m);
      }
    }
    dnnl_memory_desc_t out_md;
    const dnnl_dims_t odims = { 1, CZ_N_BINS, n->h / 4, n->w / 4 };
    md_plain (&out_md, 4, odims, dnnl_f32, dnnl_nchw);
    CHECK (dnnl_memory_create (&n->out, &out_md, n->engine, n->logits),
        "wrap the logits");
  }
  {
    const dnnl_memory_desc_t *last_md, *out_md;
    dnnl_memory_get_memory_desc (n->layer[CZ_N_LAYERS - 1].dst, &last_md);
    dnnl_memory_get_memory_desc (n->out, &out_md);
    CHECK (dnnl_reorder_primitive_desc_create (&pd, last_md, n->engine,
            out_md, n->engine, NULL), "plan the logits' layout");
    CHECK (dnnl_primitive_create (&n->out_reorder[k], pd), "make a reorder");
    dnnl_primitive_desc_destroy (pd);
    pd = NULL;
  }
  return TRUE;
fail:
  if (pd)
    dnnl_primitive_desc_destroy (pd);
  return FALSE;
}

gboolean
cz_dnnl_net_prepare (CzDnnlNet * n, int h, int w, int max_threads,
    GError ** error)
{
  g_return_val_if_fail (h > 0 && w > 0 && h % 8 == 0 && w % 8 == 0, FALSE);
  max_threads = MAX (max_threads, 1);
  if (n->h == h && n->w == w && n->max_threads == max_threads)
    return TRUE;
  free_size (n);
  n->h = h;
  n->w = w;
  n->max_threads = max_threads;
  for (int i = 0, lh = h, lw = w; i < CZ_N_LAYERS; i++) {
    const CzLayer *cl = &cz_layers[i];
    if ((n->layer[i].wino = wino_applies (n, i, lh, lw)))
      n->layer[i].chunk = wino_chunk (n, i, lh, lw);
    const gboolean deconv = cl->kind == CZ_LAYER_DECONV;
    lh = deconv ? 2 * lh : cz_conv_out_size (lh, cl->k, cl->stride, cl->pad,
        cl->dil);
    lw = deconv ? 2 * lw : cz_conv_out_size (lw, cl->k, cl->stride, cl->pad,
        cl->dil);
  }
  gboolean ok = TRUE;
  /* oneDNN sizes a primitive's work for omp_get_max_threads() when it is
   * made: make each set with the count it will run on, set on this thread
   * and put back after, as cz_dnnl_net_forward does */
  const int saved = omp_get_max_threads ();
  for (int k = 1; k >= 0 && ok; k--) {
    omp_set_num_threads (k ? max_threads : 1);
    ok = make_primitives (n, k, error);
  }
  omp_set_num_threads (saved);
  if (!ok)
    free_size (n);
  return ok;
}

/* The 4 phases of the transposed conv, (4 * c, h + 1, w + 1) with channel
 * (py, px, co), into its output (c, 2h, 2w): output pixel (2i + py,
 * 2j + px) is phase (py, px) at (i + py, j + px).  Both in blocks of blk
 * channels, innermost (nChw16c or nChw8c). */
static void
interleave (const Layer * l, int c, int blk, size_t esz, int n_threads)
{
  void *src_v, *dst_v;
  dnnl_memory_get_data_handle (l->dst, &src_v);
  dnnl_memory_get_data_handle (l->shuffled, &dst_v);
  const guint8 *src = src_v;
  guint8 *dst = dst_v;
  const int h = l->h, w = l->w, sw = w + 1, blocks = (c + blk - 1) / blk;
  const int src_blocks = (4 * c + blk - 1) / blk;
  const size_t vec = blk * esz;
  const size_t src_plane = (size_t) (h + 1) * sw * vec;
  const size_t dst_plane = (size_t) 2 * h * 2 * w * vec;
  g_assert (src_blocks >= blocks);
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int row = 0; row < blocks * 2 * h; row++) {
    const int cb = row / (2 * h), y = row % (2 * h), py = y & 1, i = y >> 1;
    guint8 *d = dst + cb * dst_plane + (size_t) y * 2 * w * vec;
    for (int x = 0; x < 2 * w; x++) {
      const int px = x & 1, j = x >> 1;
      const size_t at = ((size_t) (i + py) * sw + j + px) * vec;
      if (c % blk == 0) {       /* the phase's channels fill whole blocks */
        memcpy (d + x * vec, src + ((py * 2 + px) * blocks + cb) * src_plane
            + at, vec);
        continue;
      }
      for (int o = 0; o < blk && cb * blk + o < c; o++) {
        const int s = (py * 2 + px) * c + cb * blk + o;
        memcpy (d + x * vec + o * esz, src + (s / blk) * src_plane + at
            + (s % blk) * esz, esz);
      }
    }
  }
}

const float *
cz_dnnl_net_forward (CzDnnlNet * n, const float *in, int n_threads)
{
  const int k = n_threads > 1 && n->max_threads > 1;
  dnnl_memory_set_data_handle (n->in, (void *) in);
  dnnl_status_t st = dnnl_success;
  /* oneDNN's parallel regions open from this thread at the top level, so
   * they reuse the team that this thread's other OpenMP regions (resampling,
   * softmax, Lab -> RGB) keep.  Nested in a one-thread region, as they were,
   * every layer's region got a team of its own beside that one: on 2 cores
   * the net took 13-15 ms on 2 threads against 7.7 on one, and the element
   * ran it on one (bench-frame 640x480: 10.7 ms a frame, now 6.1).  The
   * count set here is this thread's own OpenMP setting, put back after. */
  const int saved = omp_get_max_threads ();
  omp_set_num_threads (k ? n->max_threads : 1);
  dnnl_memory_t src = n->in;
  for (int i = 0; i < CZ_N_LAYERS && st == dnnl_success; i++) {
    Layer *l = &n->layer[i];
    dnnl_exec_arg_t args[7] = {
      {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, l->weights},
      {DNNL_ARG_BIAS, l->bias}, {DNNL_ARG_DST, l->dst}
    };
    int nargs = 4;
    if (l->wino) {
      const CzLayer *cl = &cz_layers[i];
      const int *widths = n->model->widths, threads = k ? n->max_threads : 1;
      void *x, *y;
      dnnl_memory_get_data_handle (src, &x);
      dnnl_memory_get_data_handle (l->dst, &y);
      const int tiles = cz_wino2_tiles (l->h, l->w, cl->dil);
      for (int t0 = 0; t0 < tiles && st == dnnl_success; t0 += l->chunk) {
        const int count = MIN (l->chunk, tiles - t0);
        cz_wino2_input (x, cz_layer_channels (cl->in, widths), l->h, l->w,
            cl->dil, t0, count, l->chunk, n->wino_v, threads);
        dnnl_exec_arg_t mm[] = { {DNNL_ARG_SRC, l->wv},
        {DNNL_ARG_WEIGHTS, l->weights}, {DNNL_ARG_DST, l->wm}
        };
        st = dnnl_primitive_execute (l->prim[k], n->stream, 3, mm);
        if (st == dnnl_success)
          st = dnnl_stream_wait (n->stream);
        cz_wino2_output (n->wino_m, cz_layer_channels (cl->out, widths),
            l->h, l->w, cl->dil, t0, count, l->chunk, l->wino_bias,
            cl->relu, l->wino_scale, l->wino_shift, y, threads);
      }
      src = l->dst;
      continue;
    }
    if (l->scale) {
      const int first = cz_layers[i].relu ? 1 : 0;
      args[nargs++] = (dnnl_exec_arg_t) {
      DNNL_ARG_ATTR_MULTIPLE_POST_OP (first) | DNNL_ARG_SRC_1, l->scale};
      args[nargs++] = (dnnl_exec_arg_t) {
      DNNL_ARG_ATTR_MULTIPLE_POST_OP (first + 1) | DNNL_ARG_SRC_1, l->shift};
    }
    st = dnnl_primitive_execute (l->prim[k], n->stream, nargs, args);
    if (l->cast[k] && st == dnnl_success) {
      dnnl_exec_arg_t cast[] = { {DNNL_ARG_FROM, l->dst}, {DNNL_ARG_TO,
          l->cast_dst}
      };
      st = dnnl_primitive_execute (l->cast[k], n->stream, 2, cast);
    }
    src = layer_out (l);
    if (l->shuffled && st == dnnl_success) {
      st = dnnl_stream_wait (n->stream);
      interleave (l, cz_layer_channels (cz_layers[i].out, n->model->widths),
          n->blk, layer_type (n, i + 1) == dnnl_bf16 ? 2 : 4,
          k ? n->max_threads : 1);
      src = l->shuffled;
    }
  }
  if (st == dnnl_success) {
    dnnl_exec_arg_t args[] = { {DNNL_ARG_FROM, src}, {DNNL_ARG_TO, n->out}
    };
    st = dnnl_primitive_execute (n->out_reorder[k], n->stream, 2, args);
  }
  if (st == dnnl_success)
    st = dnnl_stream_wait (n->stream);
  omp_set_num_threads (saved);
  /* every argument was checked when the primitives were made */
  g_assert (st == dnnl_success);
  return n->logits;
}

void
cz_dnnl_net_set_winograd (CzDnnlNet * n, gboolean on)
{
  n->no_winograd = !on;
  free_size (n);                /* the next prepare makes the layers anew */
}

const char *
cz_dnnl_net_describe (const CzDnnlNet * n)
{
  return n->describe ? n->describe->str : "";
}
