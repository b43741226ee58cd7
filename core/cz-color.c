#include "cz-color.h"

#include <math.h>

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

void
cz_write_rgb8 (const float *L, const float *ab, int w, int h, uint8_t * dst,
    int stride, const CzRgbLayout * lay, gboolean set_alpha, int n_threads)
{
  const size_t plane = (size_t) w * h;
  ensure_tables ();
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int y = 0; y < h; y++) {
    uint8_t *d = dst + (size_t) y * stride;
    for (int x = 0; x < w; x++, d += lay->bpp) {
      const size_t i = (size_t) y * w + x;
      float lin[3];
      lab_to_linear (L[i], ab[i], ab[plane + i], lin);
      d[lay->r] = linear_to_code (lin[0]);
      d[lay->g] = linear_to_code (lin[1]);
      d[lay->b] = linear_to_code (lin[2]);
      if (set_alpha && lay->a >= 0)
        d[lay->a] = 255;
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
    for (int x = 0; x < cw; x++) {
      const size_t i = (size_t) y * cw + x;
      float lin[3];
      lab_to_linear (L[i], ab[i], ab[plane + i], lin);
      const double r = tables.to_srgb8[(int) (lin[0] * (LUT_SIZE - 1) + .5f)]
          / 255.0;
      const double g = tables.to_srgb8[(int) (lin[1] * (LUT_SIZE - 1) + .5f)]
          / 255.0;
      const double b = tables.to_srgb8[(int) (lin[2] * (LUT_SIZE - 1) + .5f)]
          / 255.0;
      const double luma = m->kr * r + kg * g + m->kb * b;
      du[(size_t) x * pixel_stride] =
          clamp_u8 (128.0 + scale * (b - luma) / (2.0 * (1.0 - m->kb)));
      dv[(size_t) x * pixel_stride] =
          clamp_u8 (128.0 + scale * (r - luma) / (2.0 * (1.0 - m->kr)));
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
