/* project(points, cameras, min_depth, margin, block, tolerance, out_point, out_uv, out_depth, counts) -> P
 *
 * LiDAR points into every camera in one pass per camera: depth, view-box cull, field-of-view cone, lens
 * model, image bounds and the depth-buffer occlusion test, with no temporaries. This is core.geometry's
 * projection for every device (the points arrive in host memory): as a chain of torch ops the same job made
 * ~30 passes over (camera, point) arrays and cost 3-4x more (see bench.core_vision).
 *
 * points:   (N, 3) float32, C-contiguous.
 * cameras:  (M, NCOL) float64, C-contiguous; the columns are named by the module's COLUMNS (one source for
 *           geometry.py): R (row-major) and t of T_cam_lidar, fx fy cx cy skew, the lens model (`model`:
 *           LENS_RATIONAL or LENS_EQUIDISTANT) and its coefficients k1 k2 p1 p2 k3 k4 k5 k6, the image width
 *           and height, the conservative view box (box_cx box_hx box_cy box_hy: |x/z - box_c| <= box_h holds
 *           for every seen pair) and max_r2, the squared undistorted radius of the field-of-view cone (past it
 *           the lens model folds back).
 * Lens models, on the undistorted normalized point (x, y) = (X/z, Y/z), r^2 = x^2 + y^2:
 *   LENS_RATIONAL (0): OpenCV's rational polynomial with tangential terms (none and plumb_bob are special
 *           cases): xd = x rho(r^2) + 2 p1 x y + p2 (r^2 + 2 x^2), yd likewise,
 *           rho = (1 + k1 r^2 + k2 r^4 + k3 r^6) / (1 + k4 r^2 + k5 r^4 + k6 r^6).
 *   LENS_EQUIDISTANT (1): ROS 'equidistant', OpenCV's cv::fisheye, coefficients k1 k2 k3 k4 (p1 p2 k5 k6
 *           unused): theta = atan(r), theta_d = theta (1 + k1 theta^2 + k2 theta^4 + k3 theta^6 + k4 theta^8),
 *           (xd, yd) = (theta_d / r) (x, y).
 * Then u = fx xd + skew yd + cx, v = fy yd + cy.
 * block:    occlusion block in pixels; 0 turns occlusion off. Per camera and block the nearest depth wins and
 *           pairs up to `tolerance` metres behind it still count.
 * out_*:    writable buffers of at least M * N entries: int64 point index, (., 2) float32 pixels,
 *           float32 depth. counts: (M,) int64, each camera's number of pairs.
 * The P pairs are written camera-major and by ascending point within a camera. The bounds test runs on the
 * float32 pixel that is stored, so every stored pixel is inside its image (minus the margin).
 */
#include "_buffers.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

enum {
    R00, R01, R02, R10, R11, R12, R20, R21, R22, T0, T1, T2,
    FX, FY, CX, CY, SKEW, MODEL, K1, K2, P1, P2, K3, K4, K5, K6,
    WIDTH, HEIGHT, BOX_CX, BOX_HX, BOX_CY, BOX_HY, MAX_R2, NCOL
};
static const char *const COLUMN_NAMES[NCOL] = {
    "r00", "r01", "r02", "r10", "r11", "r12", "r20", "r21", "r22", "t0", "t1", "t2",
    "fx", "fy", "cx", "cy", "skew", "model", "k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6",
    "width", "height", "box_cx", "box_hx", "box_cy", "box_hy", "max_r2"};
enum { LENS_RATIONAL, LENS_EQUIDISTANT, NUM_LENS_MODELS }; /* the `model` column; exported as LENS_MODELS */
static const char *const LENS_NAMES[NUM_LENS_MODELS] = {"rational", "equidistant"};

typedef struct {
    double min_depth, margin, tolerance;
    Py_ssize_t block; /* 0: no occlusion */
} Options;

#define CHUNK 512 /* points per cull block (a multiple of 8): the mask stays in L1 */

/* The cull, vectorized: mask[j] = 1 where point j may be seen (in front and inside the view box). `rows`
   holds, as 3 x 4 float32 (coefficients of x, y, z, then the offset): the optical z, and the view-box
   coordinates bx = (x - box_c z) / box_h, by likewise, so the test is z > zmin, |bx| < z, |by| < z. In
   float32 with slack: the box is padded far beyond float32 rounding (geometry.view_box) and zmin sits below
   the minimum depth; the exact tests follow in double. Compiled for AVX2 too, chosen at load time. */
__attribute__((target_clones("avx2", "default")))
static void cull(const float *restrict xs, const float *restrict ys, const float *restrict zs, Py_ssize_t m,
                 const float rows[3][4], float zmin, uint8_t *restrict mask)
{
    const float a0 = rows[0][0], a1 = rows[0][1], a2 = rows[0][2], a3 = rows[0][3];
    const float b0 = rows[1][0], b1 = rows[1][1], b2 = rows[1][2], b3 = rows[1][3];
    const float c0 = rows[2][0], c1 = rows[2][1], c2 = rows[2][2], c3 = rows[2][3];
    for (Py_ssize_t j = 0; j < m; j++) {
        const float x = xs[j], y = ys[j], w = zs[j];
        const float z = a0 * x + a1 * y + a2 * w + a3;
        const float bx = b0 * x + b1 * y + b2 * w + b3, by = c0 * x + c1 * y + c2 * w + c3;
        mask[j] = (z > zmin) & (fabsf(bx) < z) & (fabsf(by) < z);
    }
}

/* The exact test and the pixels of nc candidates (coordinates gx, gy, gz), branch-free so that it is
   vectorized (4 doubles at a time with AVX2; the same IEEE operations in either clone, so the same bits):
   z > min depth, inside the field-of-view cone (past it the lens model folds back), lens model, float32
   pixel inside the image minus the margin. Writes the pixel and depth, and ok = 1 for a seen pair; a pair
   that is not seen gets pixel (0, 0), so that its block index stays in range. The lens model is chosen once
   per call (`model`), outside the loop: each model's loop is compiled and vectorized on its own (the
   equidistant one with a branch-free atan; setup.py's -fno-math-errno lets sqrt be vectorized and
   -fno-trapping-math lets the compiler turn its selects into blends). */
typedef struct {
    double r[9], t[3], fx, fy, cx, cy, skew, k1, k2, p1, p2, k3, k4, k5, k6, max_r2, min_depth;
    float u_lo, u_hi, v_lo, v_hi;
    int model; /* LENS_RATIONAL or LENS_EQUIDISTANT */
} Lens;

/* atan(x) for x >= 0 (inf included; NaN stays NaN), branch-free so that the fisheye loop is vectorized (libm's
   atan is a call the compiler cannot vectorize): the range reduction and the rational approximation of Cephes'
   atan.c (S. L. Moshier; also Go's math.Atan), within 1 ulp of libm's over 1e-20..1e20 (and exact at 0, inf). */
static inline double atan_nonneg(double x)
{
    const double tan_3pi_8 = 2.41421356237309504880, more_bits = 6.123233995736765886130e-17; /* pi/2 - PIO2 */
    /* x > 3 pi / 8: pi/2 + atan(-1 / x); x > 0.66: pi/4 + atan((x - 1) / (x + 1)); else atan(x). One division
       of selected operands, every comparison made for every lane: no branch, so the loop is vectorized. */
    const int big = x > tan_3pi_8, over = x > 0.66;
    double num = over ? x - 1.0 : x, den = over ? x + 1.0 : 1.0;
    double base = over ? 0.78539816339744830962 + 0.5 * more_bits : 0.0;
    num = big ? -1.0 : num;
    den = big ? x : den;
    base = big ? 1.57079632679489661923 + more_bits : base;
    const double a = num / den;
    const double z = a * a;
    const double p = (((-8.750608600031904122785e-01 * z - 1.615753718733365076637e+01) * z
                       - 7.500855792314704667340e+01) * z - 1.228866684490136173410e+02) * z
                     - 6.485021904942025371773e+01;
    const double q = ((((z + 2.485846490142306297962e+01) * z + 1.650270098316988542046e+02) * z
                       + 4.328810604912902668951e+02) * z + 4.853903996359136964868e+02) * z
                     + 1.945506571482613964425e+02;
    return base + (a * (z * p / q) + a);
}

/* The loop for one lens model: `model` is a constant where it is inlined, so the other model's code is gone. */
static inline __attribute__((always_inline)) void
exact_model(const float *restrict gx, const float *restrict gy, const float *restrict gz, Py_ssize_t nc,
            const Lens *restrict L, float *restrict cu, float *restrict cv, float *restrict cz,
            uint8_t *restrict ok, const int model)
{
    const double r00 = L->r[0], r01 = L->r[1], r02 = L->r[2], r10 = L->r[3], r11 = L->r[4], r12 = L->r[5];
    const double r20 = L->r[6], r21 = L->r[7], r22 = L->r[8], t0 = L->t[0], t1 = L->t[1], t2 = L->t[2];
    const double fx = L->fx, fy = L->fy, cx = L->cx, cy = L->cy, skew = L->skew;
    const double k1 = L->k1, k2 = L->k2, p1 = L->p1, p2 = L->p2, k3 = L->k3, k4 = L->k4, k5 = L->k5, k6 = L->k6;
    const double max_r2 = L->max_r2, min_depth = L->min_depth;
    const float u_lo = L->u_lo, u_hi = L->u_hi, v_lo = L->v_lo, v_hi = L->v_hi;
    for (Py_ssize_t q = 0; q < nc; q++) {
        const double px = gx[q], py = gy[q], pz = gz[q];
        const double z = r20 * px + r21 * py + r22 * pz + t2;
        const double inv_z = 1.0 / z;
        const double xn = (r00 * px + r01 * py + r02 * pz + t0) * inv_z;
        const double yn = (r10 * px + r11 * py + r12 * pz + t1) * inv_z;
        const double r2 = xn * xn + yn * yn;
        double xd, yd;
        if (model == LENS_EQUIDISTANT) {
            /* cv::fisheye: theta_d / r, and 1 on the axis (its limit; OpenCV's cut-off too) */
            const double r = sqrt(r2), theta = atan_nonneg(r), t2 = theta * theta;
            const double theta_d = theta * (1.0 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4))));
            const int off_axis = r > 1e-8; /* operands selected before the division, as in atan_nonneg */
            const double scale = (off_axis ? theta_d : 1.0) / (off_axis ? r : 1.0);
            xd = xn * scale;
            yd = yn * scale;
        } else {
            const double radial =
                (1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))) / (1.0 + r2 * (k4 + r2 * (k5 + r2 * k6)));
            const double xy2 = 2.0 * xn * yn;
            xd = xn * radial + p1 * xy2 + p2 * (r2 + 2.0 * xn * xn);
            yd = yn * radial + p1 * (r2 + 2.0 * yn * yn) + p2 * xy2;
        }
        const float u = (float)(fx * xd + skew * yd + cx), v = (float)(fy * yd + cy);
        const int seen = (z > min_depth) & (r2 <= max_r2) & (u >= u_lo) & (u < u_hi) & (v >= v_lo) & (v < v_hi);
        cu[q] = seen ? u : 0.0f;
        cv[q] = seen ? v : 0.0f;
        cz[q] = (float)z;
        ok[q] = (uint8_t)seen;
    }
}

__attribute__((target_clones("avx2", "default")))
static void exact(const float *restrict gx, const float *restrict gy, const float *restrict gz, Py_ssize_t nc,
                  const Lens *restrict L, float *restrict cu, float *restrict cv, float *restrict cz,
                  uint8_t *restrict ok)
{
    if (L->model == LENS_EQUIDISTANT)
        exact_model(gx, gy, gz, nc, L, cu, cv, cz, ok, LENS_EQUIDISTANT);
    else
        exact_model(gx, gy, gz, nc, L, cu, cv, cz, ok, LENS_RATIONAL);
}

/* One camera's pairs, written from index 0 of the out arrays; returns their number. xs, ys, zs: the
   points' coordinates as three arrays. Per block of CHUNK points: the cull, the candidates gathered, the
   exact test, then the seen pairs appended (branch-free) and entered in the depth buffer. */
static Py_ssize_t project_camera(const float *xs, const float *ys, const float *zs, Py_ssize_t n, const double *c,
                                 const Options *o, int64_t *opoint, float *ouv, float *odepth, int32_t *cell,
                                 float *nearest)
{
    const double r00 = c[R00], r01 = c[R01], r02 = c[R02], r10 = c[R10], r11 = c[R11], r12 = c[R12];
    const double r20 = c[R20], r21 = c[R21], r22 = c[R22], t0 = c[T0], t1 = c[T1], t2 = c[T2];
    const double bcx = c[BOX_CX], bhx = c[BOX_HX], bcy = c[BOX_CY], bhy = c[BOX_HY];
    const float rows[3][4] = {
        {(float)r20, (float)r21, (float)r22, (float)t2},
        {(float)((r00 - bcx * r20) / bhx), (float)((r01 - bcx * r21) / bhx), (float)((r02 - bcx * r22) / bhx),
         (float)((t0 - bcx * t2) / bhx)},
        {(float)((r10 - bcy * r20) / bhy), (float)((r11 - bcy * r21) / bhy), (float)((r12 - bcy * r22) / bhy),
         (float)((t1 - bcy * t2) / bhy)}};
    const float zmin = (float)(o->min_depth - 1e-3 * (1.0 + fabs(o->min_depth)));
    /* pixel centers are integers: an axis of S pixels spans [-0.5, S - 0.5), shrunk by the margin */
    const Lens lens = {{r00, r01, r02, r10, r11, r12, r20, r21, r22}, {t0, t1, t2}, c[FX], c[FY], c[CX], c[CY],
                       c[SKEW], c[K1], c[K2], c[P1], c[P2], c[K3], c[K4], c[K5], c[K6], c[MAX_R2], o->min_depth,
                       (float)(o->margin - 0.5), (float)(c[WIDTH] - 0.5 - o->margin), (float)(o->margin - 0.5),
                       (float)(c[HEIGHT] - 0.5 - o->margin), (int)c[MODEL]};
    const Py_ssize_t block = o->block;
    const int pow2 = block > 0 && !(block & (block - 1)); /* then multiplying by 1 / block is exact */
    const double inv_block = block ? 1.0 / (double)block : 0.0;
    Py_ssize_t blocks_x = 1, blocks_y = 1;
    if (block) {
        blocks_x = (Py_ssize_t)ceil(c[WIDTH] / (double)block);
        blocks_y = (Py_ssize_t)ceil(c[HEIGHT] / (double)block);
        for (Py_ssize_t b = 0; b < blocks_x * blocks_y; b++) nearest[b] = INFINITY;
    }
    uint8_t mask[CHUNK], ok[CHUNK];
    int32_t cand[CHUNK];
    float gx[CHUNK], gy[CHUNK], gz[CHUNK], cu[CHUNK], cv[CHUNK], cz[CHUNK];
    Py_ssize_t k = 0;
    for (Py_ssize_t i0 = 0; i0 < n; i0 += CHUNK) {
        const Py_ssize_t m = n - i0 < CHUNK ? n - i0 : CHUNK;
        cull(xs + i0, ys + i0, zs + i0, m, rows, zmin, mask);
        memset(mask + m, 0, CHUNK - m);
        Py_ssize_t nc = 0;
        for (Py_ssize_t j = 0; j < m; j += 8) { /* most of a camera's points are culled: 8 at a time */
            uint64_t word;
            memcpy(&word, mask + j, 8);
            if (!word) continue;
            for (Py_ssize_t jj = j; jj < j + 8; jj++) { /* branch-free append */
                cand[nc] = (int32_t)jj;
                nc += mask[jj];
            }
        }
        if (!nc) continue;
        for (Py_ssize_t q = 0; q < nc; q++) {
            gx[q] = xs[i0 + cand[q]];
            gy[q] = ys[i0 + cand[q]];
            gz[q] = zs[i0 + cand[q]];
        }
        exact(gx, gy, gz, nc, &lens, cu, cv, cz, ok);
        for (Py_ssize_t q = 0; q < nc; q++) { /* branch-free: written at k, kept when k advances */
            const float u = cu[q], v = cv[q], depth = cz[q];
            opoint[k] = i0 + cand[q];
            ouv[2 * k] = u;
            ouv[2 * k + 1] = v;
            odepth[k] = depth;
            if (block) {
                /* block index, clamped: a negative margin reaches past the edges. Truncation is floor here,
                   as negative quotients clamp to 0 anyway (floor() is a library call on baseline x86-64). */
                const double qx = pow2 ? (u + 0.5) * inv_block : (u + 0.5) / (double)block; /* exact either way */
                const double qy = pow2 ? (v + 0.5) * inv_block : (v + 0.5) / (double)block;
                Py_ssize_t bx = qx <= 0 ? 0 : (Py_ssize_t)qx, by = qy <= 0 ? 0 : (Py_ssize_t)qy;
                bx = bx >= blocks_x ? blocks_x - 1 : bx;
                by = by >= blocks_y ? blocks_y - 1 : by;
                const int32_t b = (int32_t)(by * blocks_x + bx);
                const float nearest_b = nearest[b];
                cell[k] = b;
                nearest[b] = ok[q] && depth < nearest_b ? depth : nearest_b; /* a min, not a branch */
            }
            k += ok[q];
        }
    }
    if (!block) return k;
    /* occlusion: keep the pairs near the nearest depth of their block, in order. Branch-free: each pair is
       written to the next slot, which advances only when the pair is kept (the test is unpredictable). */
    Py_ssize_t kept = 0;
    for (Py_ssize_t q = 0; q < k; q++) {
        const int64_t i = opoint[q];
        const float u = ouv[2 * q], v = ouv[2 * q + 1], depth = odepth[q];
        opoint[kept] = i;
        ouv[2 * kept] = u;
        ouv[2 * kept + 1] = v;
        odepth[kept] = depth;
        kept += (double)depth <= (double)nearest[cell[q]] + o->tolerance;
    }
    return kept;
}

/* `get_typed_buffer` with at least `min_items` items. */
static int get_buffer(PyObject *obj, Py_buffer *b, int writable, char type, Py_ssize_t min_items, const char *name)
{
    if (get_typed_buffer(obj, b, writable, type, name) < 0) return -1;
    if (b->len / b->itemsize >= min_items) return 0;
    PyErr_Format(PyExc_ValueError, "%s has %zd items, needs at least %zd", name, b->len / b->itemsize, min_items);
    return -1;
}

static PyObject *project(PyObject *self, PyObject *args)
{
    PyObject *pts_obj, *cam_obj, *point_obj, *uv_obj, *depth_obj, *counts_obj, *result = NULL;
    Options o;
    Py_buffer pts = {0}, cam = {0}, opoint = {0}, ouv = {0}, odepth = {0}, counts = {0};
    int32_t *cell = NULL;
    float *nearest = NULL, *soa = NULL;

    if (!PyArg_ParseTuple(args, "OOddndOOOO:project", &pts_obj, &cam_obj, &o.min_depth, &o.margin, &o.block,
                          &o.tolerance, &point_obj, &uv_obj, &depth_obj, &counts_obj))
        return NULL;
    if (o.block < 0) {
        PyErr_Format(PyExc_ValueError, "occlusion block must be >= 0 pixels, got %zd", o.block);
        return NULL;
    }
    if (get_buffer(pts_obj, &pts, 0, 'f', 0, "points") < 0 || get_buffer(cam_obj, &cam, 0, 'd', 0, "cameras") < 0)
        goto done;
    if (pts.ndim != 2 || pts.shape[1] != 3 || cam.ndim != 2 || cam.shape[1] != NCOL) {
        PyErr_Format(PyExc_ValueError, "points must be (N, 3) and cameras (M, %d)", NCOL);
        goto done;
    }
    const Py_ssize_t n = pts.shape[0], m = cam.shape[0];
    if (n > INT32_MAX || (n && m > PY_SSIZE_T_MAX / n / 2)) {
        PyErr_SetString(PyExc_ValueError, "too many points or cameras");
        goto done;
    }
    if (get_buffer(point_obj, &opoint, 1, 'q', m * n, "out_point") < 0 ||
        get_buffer(uv_obj, &ouv, 1, 'f', 2 * m * n, "out_uv") < 0 ||
        get_buffer(depth_obj, &odepth, 1, 'f', m * n, "out_depth") < 0 ||
        get_buffer(counts_obj, &counts, 1, 'q', m, "counts") < 0)
        goto done;
    const double *table = cam.buf;
    Py_ssize_t max_cells = 1;
    for (Py_ssize_t c = 0; c < m; c++) {
        const double w = table[c * NCOL + WIDTH], h = table[c * NCOL + HEIGHT];
        if (!(w >= 1 && h >= 1 && w <= 1 << 20 && h <= 1 << 20)) {
            PyErr_Format(PyExc_ValueError, "camera %zd: image size %gx%g is not usable", c, w, h);
            goto done;
        }
        const double model = table[c * NCOL + MODEL];
        if (!(model == LENS_RATIONAL || model == LENS_EQUIDISTANT)) {
            char *text = PyOS_double_to_string(model, 'r', 0, 0, NULL); /* PyErr_Format has no %g */
            PyErr_Format(PyExc_ValueError, "camera %zd: unknown lens model %s", c, text ? text : "?");
            PyMem_Free(text);
            goto done;
        }
        if (o.block) {
            Py_ssize_t cells = (Py_ssize_t)ceil(w / (double)o.block) * (Py_ssize_t)ceil(h / (double)o.block);
            max_cells = cells > max_cells ? cells : max_cells;
        }
    }
    if (!(soa = PyMem_RawMalloc((3 * n + 1) * sizeof(float))) ||
        (o.block && (!(cell = PyMem_RawMalloc((n ? n : 1) * sizeof(int32_t))) ||
                     !(nearest = PyMem_RawMalloc(max_cells * sizeof(float)))))) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t total = 0;
    int64_t *per_camera = counts.buf;
    Py_BEGIN_ALLOW_THREADS
    const float *xyz = pts.buf;
    for (Py_ssize_t i = 0; i < n; i++) { /* x, y, z as three arrays: the cull reads them as vectors */
        soa[i] = xyz[3 * i];
        soa[n + i] = xyz[3 * i + 1];
        soa[2 * n + i] = xyz[3 * i + 2];
    }
    for (Py_ssize_t c = 0; c < m; c++) {
        Py_ssize_t k = project_camera(soa, soa + n, soa + 2 * n, n, table + c * NCOL, &o,
                                      (int64_t *)opoint.buf + total,
                                      (float *)ouv.buf + 2 * total, (float *)odepth.buf + total, cell, nearest);
        per_camera[c] = k;
        total += k;
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(total);

done:
    PyMem_RawFree(cell);
    PyMem_RawFree(nearest);
    PyMem_RawFree(soa);
    Py_buffer *held[] = {&pts, &cam, &opoint, &ouv, &odepth, &counts};
    for (size_t i = 0; i < sizeof(held) / sizeof(held[0]); i++)
        if (held[i]->obj) PyBuffer_Release(held[i]);
    return result;
}

static PyMethodDef methods[] = {
    {"project", project, METH_VARARGS,
     "project(points, cameras, min_depth, margin, block, tolerance, out_point, out_uv, out_depth, counts) -> P:\n"
     "the (camera, point) pairs in which each LiDAR point is seen. See _projection.c."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_projection", "LiDAR-to-camera projection.", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__projection(void)
{
    PyObject *mod = PyModule_Create(&module), *names = PyTuple_New(NCOL), *lenses = PyTuple_New(NUM_LENS_MODELS);
    if (!mod || !names || !lenses) goto fail;
    for (int i = 0; i < NCOL; i++) {
        PyObject *s = PyUnicode_FromString(COLUMN_NAMES[i]);
        if (!s) goto fail;
        PyTuple_SET_ITEM(names, i, s);
    }
    for (int i = 0; i < NUM_LENS_MODELS; i++) {
        PyObject *s = PyUnicode_FromString(LENS_NAMES[i]);
        if (!s) goto fail;
        PyTuple_SET_ITEM(lenses, i, s);
    }
    if (PyModule_AddObject(mod, "COLUMNS", names) < 0) goto fail;
    names = NULL; /* the module holds it now */
    if (PyModule_AddObject(mod, "LENS_MODELS", lenses) < 0) goto fail;
    return mod;
fail:
    Py_XDECREF(names);
    Py_XDECREF(lenses);
    Py_XDECREF(mod);
    return NULL;
}
