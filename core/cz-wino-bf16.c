#include "cz-wino-bf16.h"

#include "cz-ops.h"

/* the vector helpers below are inline: no vector crosses a call (GCC warns
 * that returning a 64-byte vector has another ABI without AVX-512) */
#pragma GCC diagnostic ignored "-Wpsabi"

#define L 16                    /* channels of a block: the vector lanes */

/*   B^T = | 1  0 -1  0 |   G = | 1    0    0  |   A^T = | 1 1  1  0 |
 *         | 0  1  1  0 |       | 1/2  1/2  1/2 |         | 0 1 -1 -1 |
 *         | 0 -1  1  0 |       | 1/2 -1/2  1/2 |
 *         | 0  1  0 -1 |       | 0    0    1  |                        */
static const float G[4][3] = {
  {1.0f, 0.0f, 0.0f}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f},
  {0.0f, 0.0f, 1.0f}
};

int
cz_wino2_tiles (int h, int w, int d)
{
  return cz_axis_tiles (h, d, 2) * cz_axis_tiles (w, d, 2);
}

void
cz_wino2_weights (const float *w, int cout, int cin, float *u)
{
  for (int co = 0; co < cout; co++)
    for (int ci = 0; ci < cin; ci++) {
      const float *g = w + ((size_t) co * cin + ci) * 9;
      float t[4][3];            /* G g */
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++)
          t[i][j] = G[i][0] * g[j] + G[i][1] * g[3 + j] + G[i][2] * g[6 + j];
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)     /* (G g) G^T */
          u[((size_t) (i * 4 + j) * cin + ci) * cout + co] =
              t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2];
    }
}

/* 16 channels as one vector (GCC's vector extensions: one AVX-512
 * register in the avx512f clone, halves or quarters in the others). */
typedef float vf __attribute__((vector_size (64)));
typedef uint32_t vu __attribute__((vector_size (64)));
typedef uint16_t vh __attribute__((vector_size (32)));

static inline vf
load_bf16 (const uint16_t * p)
{
  vh h;
  memcpy (&h, p, sizeof h);
  return (vf) (__builtin_convertvector (h, vu) << 16);
}

/* p[0..15] = f rounded to bf16 as cz_bf16 does (a macro: GCC notes an ABI
 * change for every function that takes a 64-byte vector) */
#define store_bf16(p, f) do { \
    vu u_ = (vu) (f); \
    u_ = (u_ + 0x7fffu + ((u_ >> 16) & 1u)) >> 16; \
    const vh h_ = __builtin_convertvector (u_, vh); \
    memcpy ((p), &h_, sizeof h_); \
  } while (0)

static inline vf
load_f32 (const float *p)
{
  vf f;
  memcpy (&f, p, sizeof f);
  return f;
}

/* Tiles xb..xe-1 of a row of one channel block: plane (h, w, 16) -> v (at
 * tile xb and the block's channels; step from one product to the next). */
static CZ_VECTOR_CLONES void
input_row (const uint16_t * plane, int h, int w, int d, int y0, int xb,
    int xe, size_t step, int c, uint16_t * v)
{
  const vf zero = { 0 };
  for (int txi = xb; txi < xe; txi++) {
    int x0, vx;
    cz_axis_tile (txi, w, d, 2, &x0, &vx);
    vf p[4][4], t[4][4];
    for (int r = 0; r < 4; r++) {
      const int iy = y0 - d + d * r;
      for (int s = 0; s < 4; s++) {
        const int ix = x0 - d + d * s;
        p[r][s] = iy >= 0 && iy < h && ix >= 0 && ix < w ?
            load_bf16 (plane + ((size_t) iy * w + ix) * L) : zero;
      }
    }
    for (int s = 0; s < 4; s++) {       /* B^T p */
      t[0][s] = p[0][s] - p[2][s];
      t[1][s] = p[1][s] + p[2][s];
      t[2][s] = p[2][s] - p[1][s];
      t[3][s] = p[1][s] - p[3][s];
    }
    uint16_t *o = v + (size_t) (txi - xb) * c;
    for (int i = 0; i < 4; i++, o += 4 * step) {        /* (B^T p) B */
      store_bf16 (o, t[i][0] - t[i][2]);
      store_bf16 (o + step, t[i][1] + t[i][2]);
      store_bf16 (o + 2 * step, t[i][2] - t[i][1]);
      store_bf16 (o + 3 * step, t[i][1] - t[i][3]);
    }
  }
}

/* Tiles t0..t0+count-1 of a layer of c channels on h x w at dilation d:
 * the rows of tiles they touch (first, rows; tx tiles a row).  A transform
 * runs one job for each channel block of each of those rows. */
typedef struct
{
  int c, h, w, d, t0, count, tx, first, rows;
} Chunk;

static Chunk
chunk_of (int c, int h, int w, int d, int t0, int count)
{
  Chunk k = { c, h, w, d, t0, count, cz_axis_tiles (w, d, 2), 0, 0 };
  k.first = t0 / k.tx;
  k.rows = (t0 + count - 1) / k.tx - k.first + 1;
  return k;
}

/* Job `job` of a chunk: channel block cb, the tiles xb..xe-1 of its row
 * (their outputs from row y0, vy rows of them); at: the offset of its first
 * tile and block in v or m. */
typedef struct
{
  int cb, y0, vy, xb, xe;
  size_t at;
} RowJob;

static RowJob
row_job (const Chunk * k, int job)
{
  RowJob r;
  const int tyi = k->first + job % k->rows, row0 = tyi * k->tx;
  r.cb = job / k->rows;
  cz_axis_tile (tyi, k->h, k->d, 2, &r.y0, &r.vy);
  r.xb = k->t0 > row0 ? k->t0 - row0 : 0;
  r.xe = k->t0 + k->count - row0 < k->tx ? k->t0 + k->count - row0 : k->tx;
  r.at = (size_t) (row0 + r.xb - k->t0) * k->c + r.cb * L;
  return r;
}

void
cz_wino2_input (const uint16_t * src, int c, int h, int w, int d, int t0,
    int count, int stride, uint16_t * v, int n_threads)
{
  const Chunk k = chunk_of (c, h, w, d, t0, count);
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int job = 0; job < c / L * k.rows; job++) {
    const RowJob r = row_job (&k, job);
    input_row (src + (size_t) r.cb * h * w * L, h, w, d, r.y0, r.xb, r.xe,
        (size_t) stride * c, c, v + r.at);
  }
}

/* Tiles xb..xe-1 of a row of one channel block: m (at tile xb and the
 * block's channels) -> plane (h, w, 16); bias, scale and shift at the
 * block's channels. */
static CZ_VECTOR_CLONES void
output_row (const float *m, int w, int d, int y0, int vy, int xb, int xe,
    size_t step, int c, const float *bias, int relu, const float *scale,
    const float *shift, uint16_t * plane)
{
  const vf b = load_f32 (bias), zero = { 0 };
  const vf sc = scale ? load_f32 (scale) : zero + 1.0f;
  const vf sh = shift ? load_f32 (shift) : zero;
  for (int txi = xb; txi < xe; txi++) {
    int x0, vx;
    cz_axis_tile (txi, w, d, 2, &x0, &vx);
    const float *q = m + (size_t) (txi - xb) * c;
    vf t[2][4];
    for (int j = 0; j < 4; j++) {       /* A^T q */
      const vf q1 = load_f32 (q + (4 + j) * step);
      const vf q2 = load_f32 (q + (8 + j) * step);
      t[0][j] = load_f32 (q + j * step) + q1 + q2;
      t[1][j] = q1 - q2 - load_f32 (q + (12 + j) * step);
    }
    for (int i = 0; i < vy; i++) {      /* (A^T q) A, the bias, ReLU, norm */
      vf y[2] = { t[i][0] + t[i][1] + t[i][2] + b,
        t[i][1] - t[i][2] - t[i][3] + b
      };
      for (int j = 0; j < vx; j++) {
        if (relu)
          y[j] = (vf) ((vu) y[j] & (vu) (y[j] > zero));
        store_bf16 (plane + ((size_t) (y0 + d * i) * w + x0 + d * j) * L,
            y[j] * sc + sh);
      }
    }
  }
}

void
cz_wino2_output (const float *m, int c, int h, int w, int d, int t0,
    int count, int stride, const float *bias, int relu, const float *scale,
    const float *shift, uint16_t * dst, int n_threads)
{
  const Chunk k = chunk_of (c, h, w, d, t0, count);
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int job = 0; job < c / L * k.rows; job++) {
    const RowJob r = row_job (&k, job);
    const int at = r.cb * L;    /* the block's channels */
    output_row (m + r.at, w, d, r.y0, r.vy, r.xb, r.xe, (size_t) stride * c,
        c, bias + at, relu, scale ? scale + at : NULL,
        shift ? shift + at : NULL, dst + (size_t) r.cb * h * w * L);
  }
}
