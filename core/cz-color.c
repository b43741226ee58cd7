#include "cz-color.h"

#include <math.h>

#include "cz-ops.h"

/* sRGB primaries, D65 white (IEC 61966-2-1); the same numbers as
 * models/train/eccv16.py, which the network was trained with. */
static const double M[3][3] = {
  {0.412453, 0.357580, 0.180423},
  {0.212671, 0.715160, 0.072169},
  {0.019334, 0.119193, 0.950227},
};

static const double WHITE[3] = { 0.950456, 1.0, 1.088754 };

#define LUT_SIZE 65536

static struct
{
  float inv[3][3];              /* M^-1 */
  uint8_t to_srgb8[LUT_SIZE];   /* linear [0, 1] -> 8-bit sRGB code */
} tables;

static double
srgb_to_linear (double v)
{
  return v <= 0.04045 ? v / 12.92 : pow ((v + 0.055) / 1.055, 2.4);
}

static double
linear_to_srgb (double v)
{
  return v <= 0.0031308 ? v * 12.92 : 1.055 * pow (v, 1.0 / 2.4) - 0.055;
}

static gpointer
init_tables (gpointer unused)
{
  const double (*m)[3] = M;
  const double det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
      - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
      + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) {
      /* adjugate: cofactor of (j, i) */
      const int r0 = (j + 1) % 3, r1 = (j + 2) % 3;
      const int c0 = (i + 1) % 3, c1 = (i + 2) % 3;
      tables.inv[i][j] = (float) ((m[r0][c0] * m[r1][c1]
              - m[r0][c1] * m[r1][c0]) / det);
    }
  for (int i = 0; i < LUT_SIZE; i++)
    tables.to_srgb8[i] = (uint8_t) lround (255.0 *
        linear_to_srgb ((double) i / (LUT_SIZE - 1)));
  return NULL;
}

static void
ensure_tables (void)
{
  static GOnce once = G_ONCE_INIT;
  g_once (&once, init_tables, NULL);
}

static double
lab_f (double t)
{
  const double d = 6.0 / 29.0;
  return t > d * d * d ? cbrt (t) : t / (3 * d * d) + 4.0 / 29.0;
}

static inline float
lab_finv (float t)
{
  const float d = 6.0f / 29.0f;
  return t > d ? t * t * t : 3 * d * d * (t - 4.0f / 29.0f);
}

void
cz_srgb_to_lab (const float rgb[3], float lab[3])
{
  double lin[3], f[3];
  for (int i = 0; i < 3; i++)
    lin[i] = srgb_to_linear (rgb[i]);
  for (int i = 0; i < 3; i++)
    f[i] = lab_f ((M[i][0] * lin[0] + M[i][1] * lin[1] + M[i][2] * lin[2])
        / WHITE[i]);
  lab[0] = (float) (116.0 * f[1] - 16.0);
  lab[1] = (float) (500.0 * (f[0] - f[1]));
  lab[2] = (float) (200.0 * (f[1] - f[2]));
}

/* Lab -> linear RGB clipped to [0, 1]. */
static inline void
lab_to_linear (float L, float a, float b, float lin[3])
{
  const float fy = (L + 16.0f) / 116.0f;
  const float xyz[3] = {
    (float) WHITE[0] * lab_finv (fy + a / 500.0f),
    lab_finv (fy),
    (float) WHITE[2] * lab_finv (fy - b / 200.0f),
  };
  for (int i = 0; i < 3; i++) {
    float v = tables.inv[i][0] * xyz[0] + tables.inv[i][1] * xyz[1]
        + tables.inv[i][2] * xyz[2];
    lin[i] = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
  }
}

static inline uint8_t
linear_to_code (float v)
{
  return tables.to_srgb8[(int) (v * (LUT_SIZE - 1) + 0.5f)];
}

void
cz_lab_to_srgb (const float lab[3], float rgb[3])
{
  float lin[3];
  ensure_tables ();
  lab_to_linear (lab[0], lab[1], lab[2], lin);
  for (int i = 0; i < 3; i++)
    rgb[i] = (float) linear_to_srgb (lin[i]);
}

static float
gray_to_L (double v)
{
  const double y = srgb_to_linear (v);  /* R = G = B: Y = linear value */
  return (float) (116.0 * lab_f (y) - 16.0);
}

void
cz_luma_table (float table[256], gboolean limited)
{
  for (int i = 0; i < 256; i++) {
    double v = limited ? (i - 16) / 219.0 : i / 255.0;
    table[i] = gray_to_L (v < 0.0 ? 0.0 : (v > 1.0 ? 1.0 : v));
  }
}

void
cz_read_luma8 (const uint8_t * src, int stride, int pixel_stride, int w,
    int h, const float table[256], float *L, int n_threads)
{
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int y = 0; y < h; y++) {
    const uint8_t *s = src + (size_t) y * stride;
    float *d = L + (size_t) y * w;
    for (int x = 0; x < w; x++)
      d[x] = table[s[(size_t) x * pixel_stride]];
  }
}

void
cz_read_rgb8 (const uint8_t * src, int stride, const CzRgbLayout * lay,
    int w, int h, const float table[256], float *L, int n_threads)
{
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int y = 0; y < h; y++) {
    const uint8_t *s = src + (size_t) y * stride;
    float *d = L + (size_t) y * w;
    for (int x = 0; x < w; x++, s += lay->bpp)
      /* BT.601 luma weights in 8.8 fixed point; exact for R = G = B */
      d[x] = table[(77 * s[lay->r] + 150 * s[lay->g] + 29 * s[lay->b]
              + 128) >> 8];
  }
}

void
cz_read_gray16le (const uint8_t * src, int stride, int w, int h, float *L,
    int n_threads)
{
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int y = 0; y < h; y++) {
    const uint8_t *s = src + (size_t) y * stride;
    float *d = L + (size_t) y * w;
    for (int x = 0; x < w; x++)
      d[x] = gray_to_L ((s[2 * x] | s[2 * x + 1] << 8) / 65535.0);
  }
}

/* Pixels converted at a time: the arithmetic of a run vectorises, the
 * table lookups and byte stores follow. */
#define RUN 256

/* 8-bit sRGB code of a linear value in [0, 1]: the exact formula, with
 * v^(1/2.4) by the fast log and exp (relative error ~1e-6: a code differs
 * from the double-precision one only within 2e-4 of a rounding boundary;
 * the 65536-entry table it replaces missed by one code in ~2 % of values
 * and, at 64 KB, fell out of L1 cache: 2.3 ms a 640x480 frame). */
static inline int32_t
srgb_code (float v)
{
  const float lo = 12.92f * v;
  const float hi = 1.055f * cz_exp (cz_log (v > 1e-30f ? v : 1e-30f)
      * (1.0f / 2.4f)) - 0.055f;
  return (int32_t) (255.0f * (v <= 0.0031308f ? lo : hi) + 0.5f);
}

/* Lab of n pixels -> their 8-bit sRGB codes.  Written as L's gray plus the
 * colour difference, so that a* = b* = 0 gives R = G = B exactly (M^-1
 * applied to the white point is (1, 1, 1) up to rounding). */
CZ_VECTOR_CLONES static void
lab_run_to_codes (const float *L, const float *a, const float *b, int n,
    int32_t * cr, int32_t * cg, int32_t * cb)
{
  const float wx = (float) WHITE[0], wz = (float) WHITE[2];
  const float (*inv)[3] = tables.inv;
  for (int x = 0; x < n; x++) {
    const float fy = (L[x] + 16.0f) * (1.0f / 116.0f);
    const float Y = lab_finv (fy);
    const float dX = wx * (lab_finv (fy + a[x] * (1.0f / 500.0f)) - Y);
    const float dZ = wz * (lab_finv (fy - b[x] * (1.0f / 200.0f)) - Y);
    float r = Y + inv[0][0] * dX + inv[0][2] * dZ;
    float g = Y + inv[1][0] * dX + inv[1][2] * dZ;
    float bl = Y + inv[2][0] * dX + inv[2][2] * dZ;
    r = r < 0.0f ? 0.0f : (r > 1.0f ? 1.0f : r);
    g = g < 0.0f ? 0.0f : (g > 1.0f ? 1.0f : g);
    bl = bl < 0.0f ? 0.0f : (bl > 1.0f ? 1.0f : bl);
    cr[x] = srgb_code (r);
    cg[x] = srgb_code (g);
    cb[x] = srgb_code (bl);
  }
}

void
cz_write_rgb8 (const float *L, const float *ab, int w, int h, uint8_t * dst,
    int stride, const CzRgbLayout * lay, gboolean set_alpha, int n_threads)
{
  const size_t plane = (size_t) w * h;
  ensure_tables ();
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int y = 0; y < h; y++) {
    int32_t cr[RUN], cg[RUN], cb[RUN];
    for (int x0 = 0; x0 < w; x0 += RUN) {
      const int n = w - x0 < RUN ? w - x0 : RUN;
      const size_t i = (size_t) y * w + x0;
      lab_run_to_codes (L + i, ab + i, ab + plane + i, n, cr, cg, cb);
      uint8_t *d = dst + (size_t) y * stride + (size_t) x0 * lay->bpp;
      for (int x = 0; x < n; x++, d += lay->bpp) {
        d[lay->r] = (uint8_t) cr[x];
        d[lay->g] = (uint8_t) cg[x];
        d[lay->b] = (uint8_t) cb[x];
        if (set_alpha && lay->a >= 0)
          d[lay->a] = 255;
      }
    }
  }
}

static inline uint8_t
clamp_u8 (double v)
{
  return v < 0.0 ? 0 : (v > 255.0 ? 255 : (uint8_t) lrint (v));
}

void
cz_write_chroma8 (const float *L, const float *ab, int cw, int ch,
    uint8_t * u, int ustride, uint8_t * v, int vstride, int pixel_stride,
    const CzYuvMatrix * m, int n_threads)
{
  const size_t plane = (size_t) cw * ch;
  const double kg = 1.0 - m->kr - m->kb;
  const double scale = m->limited ? 224.0 : 255.0;
  ensure_tables ();
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int y = 0; y < ch; y++) {
    uint8_t *du = u + (size_t) y * ustride;
    uint8_t *dv = v + (size_t) y * vstride;
    int32_t cr[RUN], cg[RUN], cb[RUN];
    for (int x0 = 0; x0 < cw; x0 += RUN) {
      const int n = cw - x0 < RUN ? cw - x0 : RUN;
      const size_t i = (size_t) y * cw + x0;
      lab_run_to_codes (L + i, ab + i, ab + plane + i, n, cr, cg, cb);
      for (int x = 0; x < n; x++) {
        const double r = cr[x] / 255.0;
        const double g = cg[x] / 255.0;
        const double b = cb[x] / 255.0;
        const double luma = m->kr * r + kg * g + m->kb * b;
        du[(size_t) (x0 + x) * pixel_stride] =
            clamp_u8 (128.0 + scale * (b - luma) / (2.0 * (1.0 - m->kb)));
        dv[(size_t) (x0 + x) * pixel_stride] =
            clamp_u8 (128.0 + scale * (r - luma) / (2.0 * (1.0 - m->kr)));
      }
    }
  }
}

void
cz_write_luma8 (const float *L, int w, int h, uint8_t * dst, int stride,
    gboolean limited, int n_threads)
{
  ensure_tables ();
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int y = 0; y < h; y++) {
    uint8_t *d = dst + (size_t) y * stride;
    for (int x = 0; x < w; x++) {
      const float lin = lab_finv ((L[(size_t) y * w + x] + 16.0f) / 116.0f);
      const uint8_t code = linear_to_code (lin < 0.0f ? 0.0f :
          (lin > 1.0f ? 1.0f : lin));
      d[x] = limited ? (uint8_t) ((code * 219 + 127) / 255 + 16) : code;
    }
  }
}
