/* cast(primitives, origin, dirs, max_range, out_t, out_primitive, out_local, out_normal) -> hits
 *
 * The nearest hit of every ray from one origin against a scene of solid primitives: what both the LiDAR and
 * the cameras of the synthetic world see. A frame casts ~35k LiDAR rays and ~150k pixel rays per camera
 * against ~1-2k primitives, so the primitives are put in a bounding-volume hierarchy (binned surface-area
 * heuristic) built at each call: building costs well under a millisecond, and the scene changes every frame.
 *
 * primitives: (P, NCOL) float64, C-contiguous; the columns are named by the module's COLUMNS: the kind
 *             (KINDS: box, cylinder, ellipsoid, cone), the centre, the rotation R from world into the
 *             primitive's frame (row-major; local = R (p - centre)) and three sizes a, b, c:
 *               box        half extents along local x, y, z
 *               cylinder   radii along x and y (elliptic), half height along z; closed by caps
 *               ellipsoid  semi-axes
 *               cone       radius a at z = -c, radius b at z = +c (a frustum; 0 makes a tip), half height c
 * origin:     (3,) float64; dirs: (R, 3) float64 unit vectors.
 * A ray hits a primitive where it enters it at t > 1e-6 and t <= max_range: a ray that starts inside a
 * primitive does not see it. Equal distances go to the lower primitive index, so the result does not
 * depend on the hierarchy.
 * out_t (R,) float64 distance (inf: no hit); out_primitive (R,) int64 (-1: no hit); out_local (R, 3)
 * float32 hit point in the primitive's frame (textures move with their object); out_normal (R, 3) float32
 * unit normal of the entered surface in the world frame. Misses get zeros in both.
 */
#include "../../core/_buffers.h"
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum { KIND, CX, CY, CZ, R00, R01, R02, R10, R11, R12, R20, R21, R22, SA, SB, SC, NCOL };
static const char *const COLUMN_NAMES[NCOL] = {"kind", "cx", "cy", "cz", "r00", "r01", "r02", "r10", "r11",
                                               "r12", "r20", "r21", "r22", "a", "b", "c"};
enum { BOX, CYLINDER, ELLIPSOID, CONE, NKINDS };
static const char *const KIND_NAMES[NKINDS] = {"box", "cylinder", "ellipsoid", "cone"};

#define T_MIN 1e-6

/* min and max as single instructions: fmin and fmax are library calls (they must order NaNs), and no NaN
   reaches these: directions are never 0 in the box test, and every other operand is a real or an infinity */
static inline double dmin(double a, double b) { return a < b ? a : b; }
static inline double dmax(double a, double b) { return a > b ? a : b; }
#define LEAF_SIZE 4 /* primitives a leaf may always hold */
#define BINS 16
#define PRIMITIVE_COST 1.0

typedef struct {
    double lo[3], hi[3];
    int32_t index; /* leaf: first slot in `order`; inner node: its right child (the left one follows it) */
    int32_t count; /* leaf: number of primitives; inner node: 0 */
} Node;

typedef struct {
    Node *nodes;
    int32_t *order, *scratch;
    const double (*lo)[3], (*hi)[3], (*mid)[3];
    int32_t used, depth;
} Tree;

typedef struct {
    int32_t node;
    double entry; /* the ray's entry distance into the node's box */
} Pending;

static double half_area(const double lo[3], const double hi[3])
{
    const double x = hi[0] - lo[0], y = hi[1] - lo[1], z = hi[2] - lo[2];
    return x * y + y * z + z * x;
}

static void grow(double lo[3], double hi[3], const double plo[3], const double phi[3])
{
    for (int a = 0; a < 3; a++) {
        lo[a] = plo[a] < lo[a] ? plo[a] : lo[a];
        hi[a] = phi[a] > hi[a] ? phi[a] : hi[a];
    }
}

/* The subtree of order[begin .. end): split where the surface-area heuristic says, over BINS bins of the
   primitives' centres along each axis, or a leaf when no split beats testing every primitive. */
static int32_t build(Tree *t, int32_t begin, int32_t end, int32_t depth)
{
    const int32_t self = t->used++, count = end - begin;
    Node *node = &t->nodes[self];
    double clo[3] = {INFINITY, INFINITY, INFINITY}, chi[3] = {-INFINITY, -INFINITY, -INFINITY};
    for (int a = 0; a < 3; a++) node->lo[a] = INFINITY, node->hi[a] = -INFINITY;
    for (int32_t i = begin; i < end; i++) {
        grow(node->lo, node->hi, t->lo[t->order[i]], t->hi[t->order[i]]);
        grow(clo, chi, t->mid[t->order[i]], t->mid[t->order[i]]);
    }
    t->depth = depth > t->depth ? depth : t->depth;
    node->index = begin;
    node->count = count;
    if (count <= LEAF_SIZE) return self;

    double best = INFINITY, best_scale = 0;
    int best_axis = -1, best_split = -1;
    for (int axis = 0; axis < 3; axis++) {
        const double extent = chi[axis] - clo[axis];
        if (!(extent > 0)) continue;
        int32_t bin_count[BINS] = {0};
        double blo[BINS][3], bhi[BINS][3];
        for (int b = 0; b < BINS; b++)
            for (int a = 0; a < 3; a++) blo[b][a] = INFINITY, bhi[b][a] = -INFINITY;
        const double scale = BINS * (1 - 1e-9) / extent;
        for (int32_t i = begin; i < end; i++) {
            const int32_t p = t->order[i];
            const int b = (int)((t->mid[p][axis] - clo[axis]) * scale);
            bin_count[b]++;
            grow(blo[b], bhi[b], t->lo[p], t->hi[p]);
        }
        /* cost of splitting after bin s: a sweep from the right, then one from the left */
        double right_cost[BINS], lo[3] = {INFINITY, INFINITY, INFINITY}, hi[3] = {-INFINITY, -INFINITY, -INFINITY};
        int32_t n = 0;
        for (int s = BINS - 1; s > 0; s--) {
            grow(lo, hi, blo[s], bhi[s]);
            n += bin_count[s];
            right_cost[s - 1] = n ? n * half_area(lo, hi) : 0;
        }
        n = 0;
        for (int a = 0; a < 3; a++) lo[a] = INFINITY, hi[a] = -INFINITY;
        for (int s = 0; s < BINS - 1; s++) {
            grow(lo, hi, blo[s], bhi[s]);
            n += bin_count[s];
            const double cost = (n ? n * half_area(lo, hi) : 0) + right_cost[s];
            if (n && n < count && cost < best) best = cost, best_axis = axis, best_split = s, best_scale = scale;
        }
    }
    /* in units of one box test: a primitive test costs about PRIMITIVE_COST, a split one box test more */
    if (best_axis < 0 || 1 + PRIMITIVE_COST * best / half_area(node->lo, node->hi) >= PRIMITIVE_COST * count)
        return self;
    int32_t mid = begin, back = 0;
    for (int32_t i = begin; i < end; i++) { /* stable partition: bins <= split first, in input order */
        const int32_t p = t->order[i];
        if ((int)((t->mid[p][best_axis] - clo[best_axis]) * best_scale) <= best_split) t->order[mid++] = p;
        else t->scratch[back++] = p;
    }
    for (int32_t i = 0; i < back; i++) t->order[mid + i] = t->scratch[i];
    node->count = 0;
    build(t, begin, mid, depth + 1);
    node->index = build(t, mid, end, depth + 1); /* nodes never move: they are allocated up front */
    return self;
}

/* Entry distance of the ray into an axis-aligned box, or INFINITY when it misses it before `limit`. */
static inline double box_entry(const double lo[3], const double hi[3], const double o[3], const double inv[3],
                               double limit)
{
    double near = -INFINITY, far = INFINITY;
    for (int a = 0; a < 3; a++) {
        const double t1 = (lo[a] - o[a]) * inv[a], t2 = (hi[a] - o[a]) * inv[a];
        near = dmax(near, dmin(t1, t2));
        far = dmin(far, dmax(t1, t2));
    }
    return near <= far && far >= 0 && near <= limit ? near : INFINITY;
}

/* The ray's parameter interval inside the slab |z| <= c: 0 when it never is. */
static inline int slab(double o, double d, double c, double *lo, double *hi)
{
    if (d == 0) {
        *lo = -INFINITY, *hi = INFINITY;
        return fabs(o) <= c;
    }
    const double t1 = (-c - o) / d, t2 = (c - o) / d;
    *lo = dmin(t1, t2), *hi = dmax(t1, t2);
    return 1;
}

/* The roots of A t^2 + 2 B t + C = 0 (A != 0, disc = B^2 - A C >= 0) in increasing order, computed stably. */
static inline void roots(double A, double B, double C, double disc, double *r0, double *r1)
{
    const double q = -(B + copysign(sqrt(disc), B));
    double x0 = q / A, x1 = q != 0 ? C / q : x0;
    *r0 = dmin(x0, x1), *r1 = dmax(x0, x1);
}

/* Entry distance into one primitive in its own frame (o, d local), its local normal in n; INFINITY on a miss. */
static double enter(int kind, const double s[3], const double o[3], const double d[3], double n[3])
{
    n[0] = n[1] = n[2] = 0;
    if (kind == BOX) {
        double near = -INFINITY, far = INFINITY;
        int axis = 0;
        for (int a = 0; a < 3; a++) {
            double lo, hi;
            if (!slab(o[a], d[a], s[a], &lo, &hi)) return INFINITY;
            if (lo > near) near = lo, axis = a;
            far = dmin(far, hi);
        }
        if (near > far) return INFINITY;
        n[axis] = d[axis] > 0 ? -1 : 1;
        return near;
    }
    if (kind == ELLIPSOID) {
        const double q[3] = {o[0] / s[0], o[1] / s[1], o[2] / s[2]}, e[3] = {d[0] / s[0], d[1] / s[1], d[2] / s[2]};
        const double A = e[0] * e[0] + e[1] * e[1] + e[2] * e[2], B = q[0] * e[0] + q[1] * e[1] + q[2] * e[2];
        const double C = q[0] * q[0] + q[1] * q[1] + q[2] * q[2] - 1, disc = B * B - A * C;
        if (disc < 0) return INFINITY;
        double t0, t1;
        roots(A, B, C, disc, &t0, &t1);
        for (int a = 0; a < 3; a++) n[a] = (o[a] + t0 * d[a]) / (s[a] * s[a]);
        return t0;
    }
    /* cylinder and cone: a side surface x^2 / a^2 + y^2 / b^2 = r(z)^2 between the caps z = -c and z = +c */
    double zlo, zhi;
    if (!slab(o[2], d[2], s[2], &zlo, &zhi)) return INFINITY;
    double ax = 1, by = 1, m = 0, r0 = 1; /* cylinder: elliptic, r = 1 in scaled x, y; cone: circular, r(z) */
    if (kind == CYLINDER) ax = s[0], by = s[1];
    else m = (s[1] - s[0]) / (2 * s[2]), r0 = (s[0] + s[1]) / 2;
    const double ox = o[0] / ax, oy = o[1] / by, dx = d[0] / ax, dy = d[1] / by, rz = r0 + m * o[2];
    const double A = dx * dx + dy * dy - m * m * d[2] * d[2], B = ox * dx + oy * dy - m * d[2] * rz;
    const double C = ox * ox + oy * oy - rz * rz;
    /* where the side's quadric is <= 0, as up to two intervals; inside the slab it is the solid */
    double piece[2][2] = {{INFINITY, -INFINITY}, {INFINITY, -INFINITY}};
    const double scale = dx * dx + dy * dy + m * m * d[2] * d[2];
    if (fabs(A) <= 1e-12 * scale || A == 0) { /* parallel to the side (or to a cylinder's axis) */
        if (B == 0) {
            if (C <= 0) piece[0][0] = -INFINITY, piece[0][1] = INFINITY;
        } else if (B > 0) piece[0][0] = -INFINITY, piece[0][1] = -C / (2 * B);
        else piece[0][0] = -C / (2 * B), piece[0][1] = INFINITY;
    } else {
        const double disc = B * B - A * C;
        if (A > 0) {
            if (disc < 0) return INFINITY;
            roots(A, B, C, disc, &piece[0][0], &piece[0][1]);
        } else if (disc < 0) {
            piece[0][0] = -INFINITY, piece[0][1] = INFINITY;
        } else {
            double t0, t1;
            roots(A, B, C, disc, &t0, &t1);
            piece[0][0] = -INFINITY, piece[0][1] = t0, piece[1][0] = t1, piece[1][1] = INFINITY;
        }
    }
    double entry = INFINITY;
    int cap = 0;
    for (int k = 0; k < 2; k++) {
        const double lo = dmax(piece[k][0], zlo), hi = dmin(piece[k][1], zhi);
        if (lo <= hi && lo < entry) entry = lo, cap = zlo >= piece[k][0];
    }
    if (entry == INFINITY) return INFINITY;
    if (cap) {
        n[2] = d[2] > 0 ? -1 : 1;
    } else {
        const double z = o[2] + entry * d[2];
        n[0] = (o[0] + entry * d[0]) / (ax * ax);
        n[1] = (o[1] + entry * d[1]) / (by * by);
        n[2] = -m * (r0 + m * z);
    }
    return entry;
}

typedef struct {
    const double *rows; /* the primitives table */
    double max_range;
} Scene;

static inline void local_ray(const double *p, const double origin[3], const double dir[3], double o[3],
                             double d[3])
{
    const double rel[3] = {origin[0] - p[CX], origin[1] - p[CY], origin[2] - p[CZ]};
    for (int a = 0; a < 3; a++) {
        const double *r = p + R00 + 3 * a;
        o[a] = r[0] * rel[0] + r[1] * rel[1] + r[2] * rel[2];
        d[a] = r[0] * dir[0] + r[1] * dir[1] + r[2] * dir[2];
    }
}

/* Test primitive `id` against the ray and keep it in *best when it is nearer (or as near with a lower index). */
static inline void try_primitive(const Scene *sc, int64_t id, const double origin[3], const double dir[3],
                                 double *best_t, int64_t *best, double best_n[3], double best_l[3])
{
    const double *p = sc->rows + (size_t)id * NCOL;
    double o[3], d[3], n[3];
    local_ray(p, origin, dir, o, d);
    const double hit = enter((int)p[KIND], p + SA, o, d, n);
    if (hit > T_MIN && hit < INFINITY && (hit < *best_t || (hit == *best_t && (*best < 0 || id < *best)))) {
        *best_t = hit, *best = id;
        for (int a = 0; a < 3; a++) best_n[a] = n[a], best_l[a] = o[a] + hit * d[a];
    }
}

/* One ray through the tree; writes its outputs. `hint`, the primitive the previous ray hit (or -1), is
   tried first: neighbouring rays mostly hit the same surface, and a near hit prunes most of the tree. The
   result does not depend on it. Returns 1 on a hit. */
static int trace(const Tree *t, const Scene *sc, const double origin[3], const double dir[3], int64_t hint,
                 Pending *stack, double *out_t, int64_t *out_p, float *out_local, float *out_normal)
{
    double inv[3];
    for (int a = 0; a < 3; a++) /* a huge finite inverse for 0: (bound - origin) * inv is never 0 * inf */
        inv[a] = 1 / (fabs(dir[a]) > 1e-30 ? dir[a] : copysign(1e-30, dir[a]));
    double best_t = sc->max_range, best_n[3] = {0, 0, 0}, best_l[3] = {0, 0, 0};
    int64_t best = -1;
    if (hint >= 0) try_primitive(sc, hint, origin, dir, &best_t, &best, best_n, best_l);
    int32_t top = 0;
    const double root = box_entry(t->nodes[0].lo, t->nodes[0].hi, origin, inv, best_t);
    if (root < INFINITY) stack[top++] = (Pending){0, root};
    while (top) {
        const Pending next = stack[--top];
        if (next.entry > best_t) continue; /* a nearer hit was found since it was pushed */
        const Node *node = &t->nodes[next.node];
        if (node->count) {
            for (int32_t k = node->index; k < node->index + node->count; k++)
                try_primitive(sc, t->order[k], origin, dir, &best_t, &best, best_n, best_l);
            continue;
        }
        const int32_t left = next.node + 1, right = node->index;
        const double tl = box_entry(t->nodes[left].lo, t->nodes[left].hi, origin, inv, best_t);
        const double tr = box_entry(t->nodes[right].lo, t->nodes[right].hi, origin, inv, best_t);
        const int left_first = tl <= tr;
        if (dmax(tl, tr) < INFINITY) stack[top++] = left_first ? (Pending){right, tr} : (Pending){left, tl};
        if (dmin(tl, tr) < INFINITY) stack[top++] = left_first ? (Pending){left, tl} : (Pending){right, tr};
    }
    *out_t = best < 0 ? INFINITY : best_t;
    *out_p = best;
    if (best < 0) {
        for (int a = 0; a < 3; a++) out_local[a] = out_normal[a] = 0;
        return 0;
    }
    const double *p = sc->rows + (size_t)best * NCOL;
    double nw[3], len = 0;
    for (int a = 0; a < 3; a++) { /* world normal = R^T n */
        nw[a] = p[R00 + a] * best_n[0] + p[R10 + a] * best_n[1] + p[R20 + a] * best_n[2];
        len += nw[a] * nw[a];
    }
    len = sqrt(len);
    for (int a = 0; a < 3; a++) {
        out_local[a] = (float)best_l[a];
        out_normal[a] = (float)(nw[a] / len);
    }
    return 1;
}

/* A ValueError with a printf-formatted message (PyErr_Format has no %g); returns -1. */
static int value_error(const char *format, ...)
{
    char message[320];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof(message), format, args);
    va_end(args);
    PyErr_SetString(PyExc_ValueError, message);
    return -1;
}

/* The primitive's world bounding box (its local box turned by R^T) and centre; -1 with an exception when
   the row is not a valid primitive. */
static int primitive_bounds(const double *p, Py_ssize_t i, double lo[3], double hi[3], double mid[3])
{
    const double kind = p[KIND];
    if (!(kind >= 0 && kind < NKINDS && kind == floor(kind))) {
        return value_error("primitive %zd: kind %g is not one of 0..%d (KINDS)", i, kind, NKINDS - 1);
    }
    const int cone = (int)kind == CONE;
    /* a cone's end radii may be 0 (a tip), not both */
    const int sizes_ok = cone ? p[SA] >= 0 && p[SB] >= 0 && p[SA] + p[SB] > 0 && p[SA] + p[SB] < INFINITY &&
                                    p[SC] > 0 && p[SC] < INFINITY
                              : p[SA] > 0 && p[SB] > 0 && p[SC] > 0 && dmax(p[SA], dmax(p[SB], p[SC])) < INFINITY;
    if (!sizes_ok) {
        return value_error("primitive %zd (%s): sizes (%g, %g, %g) must be finite and positive%s", i,
                           KIND_NAMES[(int)kind], p[SA], p[SB], p[SC], cone ? " (one end radius may be 0)" : "");
    }
    for (int r = 0; r < 3; r++)
        for (int q = 0; q < 3; q++) {
            double dot = 0;
            for (int a = 0; a < 3; a++) dot += p[R00 + 3 * r + a] * p[R00 + 3 * q + a];
            if (!(fabs(dot - (r == q)) < 1e-6)) {
                return value_error("primitive %zd: the rotation is not orthonormal", i);
            }
        }
    const double h[3] = {cone ? dmax(p[SA], p[SB]) : p[SA], cone ? dmax(p[SA], p[SB]) : p[SB], p[SC]};
    for (int a = 0; a < 3; a++) {
        if (!isfinite(p[CX + a])) {
            return value_error("primitive %zd: the centre is not finite", i);
        }
        /* world axis a: sum over local axes of |R[local][a]| * half size, padded against rounding */
        const double e = fabs(p[R00 + a]) * h[0] + fabs(p[R10 + a]) * h[1] + fabs(p[R20 + a]) * h[2];
        const double pad = 1e-9 * (1 + e + fabs(p[CX + a]));
        lo[a] = p[CX + a] - e - pad, hi[a] = p[CX + a] + e + pad, mid[a] = p[CX + a];
    }
    return 0;
}

static PyObject *cast(PyObject *self, PyObject *args)
{
    PyObject *prim_obj, *origin_obj, *dir_obj, *t_obj, *p_obj, *l_obj, *n_obj, *result = NULL;
    double max_range;
    Py_buffer prim = {0}, org = {0}, dir = {0}, ot = {0}, op = {0}, ol = {0}, on = {0};
    Tree tree = {0};
    double(*bounds)[3] = NULL;
    Pending *stack = NULL;
    if (!PyArg_ParseTuple(args, "OOOdOOOO:cast", &prim_obj, &origin_obj, &dir_obj, &max_range, &t_obj, &p_obj,
                          &l_obj, &n_obj))
        return NULL;
    if (!(max_range > 0)) {
        value_error("max_range must be positive, got %g", max_range);
        return NULL;
    }
    if (get_typed_buffer(prim_obj, &prim, 0, 'd', "primitives") < 0 ||
        get_typed_buffer(origin_obj, &org, 0, 'd', "origin") < 0 ||
        get_typed_buffer(dir_obj, &dir, 0, 'd', "dirs") < 0 || get_typed_buffer(t_obj, &ot, 1, 'd', "out_t") < 0 ||
        get_typed_buffer(p_obj, &op, 1, 'q', "out_primitive") < 0 ||
        get_typed_buffer(l_obj, &ol, 1, 'f', "out_local") < 0 ||
        get_typed_buffer(n_obj, &on, 1, 'f', "out_normal") < 0)
        goto done;
    const Py_ssize_t np = prim.ndim == 2 ? prim.shape[0] : -1, nr = dir.ndim == 2 ? dir.shape[0] : -1;
    if (prim.ndim != 2 || prim.shape[1] != NCOL || org.ndim != 1 || org.shape[0] != 3 || dir.ndim != 2 ||
        dir.shape[1] != 3 || ot.ndim != 1 || ot.shape[0] != nr || op.ndim != 1 || op.shape[0] != nr ||
        ol.ndim != 2 || ol.shape[0] != nr || ol.shape[1] != 3 || on.ndim != 2 || on.shape[0] != nr ||
        on.shape[1] != 3) {
        PyErr_Format(PyExc_ValueError, "expected primitives (P, %d) float64, origin (3,) float64, dirs (R, 3) "
                     "float64, out_t (R,) float64, out_primitive (R,) int64, out_local and out_normal (R, 3) "
                     "float32, all C-contiguous", NCOL);
        goto done;
    }
    if (np > INT32_MAX / 2) {
        PyErr_SetString(PyExc_ValueError, "too many primitives");
        goto done;
    }
    const double *origin = org.buf, *dirs = dir.buf;
    if (!(isfinite(origin[0]) && isfinite(origin[1]) && isfinite(origin[2]))) {
        PyErr_SetString(PyExc_ValueError, "origin is not finite");
        goto done;
    }
    for (Py_ssize_t i = 0; i < nr; i++) {
        const double *d = dirs + 3 * i, len2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
        if (!(fabs(len2 - 1) < 1e-6)) {
            value_error("dirs[%zd] = (%g, %g, %g) is not a unit vector", i, d[0], d[1], d[2]);
            goto done;
        }
    }
    if (!(bounds = PyMem_RawMalloc((3 * np + 1) * sizeof(*bounds))) ||
        !(tree.nodes = PyMem_RawMalloc((2 * np + 1) * sizeof(Node))) ||
        !(tree.order = PyMem_RawMalloc((np + 1) * sizeof(int32_t))) ||
        !(tree.scratch = PyMem_RawMalloc((np + 1) * sizeof(int32_t)))) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < np; i++) {
        if (primitive_bounds((const double *)prim.buf + i * NCOL, i, bounds[i], bounds[np + i], bounds[2 * np + i]) < 0)
            goto done;
        tree.order[i] = (int32_t)i;
    }
    tree.lo = (const double(*)[3])bounds, tree.hi = (const double(*)[3])(bounds + np);
    tree.mid = (const double(*)[3])(bounds + 2 * np);
    Py_ssize_t hits = 0;
    double *out_t = ot.buf;
    int64_t *out_p = op.buf;
    float *out_l = ol.buf, *out_n = on.buf;
    if (np == 0) {
        for (Py_ssize_t i = 0; i < nr; i++) {
            out_t[i] = INFINITY, out_p[i] = -1;
            for (int a = 0; a < 3; a++) out_l[3 * i + a] = out_n[3 * i + a] = 0;
        }
        result = PyLong_FromSsize_t(0);
        goto done;
    }
    build(&tree, 0, (int32_t)np, 0);
    if (!(stack = PyMem_RawMalloc((tree.depth + 2) * sizeof(Pending)))) { /* near-first: one more per level */
        PyErr_NoMemory();
        goto done;
    }
    const Scene scene = {prim.buf, max_range};
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < nr; i++)
        hits += trace(&tree, &scene, origin, dirs + 3 * i, i ? out_p[i - 1] : -1, stack, out_t + i, out_p + i,
                      out_l + 3 * i, out_n + 3 * i);
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(hits);
done:
    PyMem_RawFree(bounds);
    PyMem_RawFree(tree.nodes);
    PyMem_RawFree(tree.order);
    PyMem_RawFree(tree.scratch);
    PyMem_RawFree(stack);
    Py_buffer *held[] = {&prim, &org, &dir, &ot, &op, &ol, &on};
    for (size_t i = 0; i < sizeof(held) / sizeof(held[0]); i++)
        if (held[i]->obj) PyBuffer_Release(held[i]);
    return result;
}

static PyMethodDef methods[] = {
    {"cast", cast, METH_VARARGS,
     "cast(primitives, origin, dirs, max_range, out_t, out_primitive, out_local, out_normal) -> hits:\n"
     "the nearest primitive along each ray. See _raycast.c."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_raycast", "Ray casting against solid primitives.",
                                    -1, methods, NULL, NULL, NULL, NULL};

static PyObject *name_tuple(const char *const *names, int count)
{
    PyObject *tuple = PyTuple_New(count);
    for (int i = 0; tuple && i < count; i++) {
        PyObject *s = PyUnicode_FromString(names[i]);
        if (!s) {
            Py_DECREF(tuple);
            return NULL;
        }
        PyTuple_SET_ITEM(tuple, i, s);
    }
    return tuple;
}

PyMODINIT_FUNC PyInit__raycast(void)
{
    PyObject *mod = PyModule_Create(&module), *columns = name_tuple(COLUMN_NAMES, NCOL);
    PyObject *kinds = name_tuple(KIND_NAMES, NKINDS);
    if (!mod || !columns || !kinds || PyModule_AddObject(mod, "COLUMNS", columns) < 0) goto fail;
    columns = NULL;
    if (PyModule_AddObject(mod, "KINDS", kinds) < 0) goto fail;
    return mod;
fail:
    Py_XDECREF(columns);
    Py_XDECREF(kinds);
    Py_XDECREF(mod);
    return NULL;
}
