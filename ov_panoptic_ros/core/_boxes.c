/* fit_boxes(points, order, starts, ends, out) -> None
 *
 * The minimum-area oriented box of each group of points in the ground plane, z from its min/max: one call
 * for every instance of a frame. Group g is points[order[starts[g] .. ends[g])]. Per group: the convex
 * hull of the xy points (Andrew's monotone chain), then the hull edge whose aligned rectangle has the
 * least area (the first such edge in hull order; a rectangle has one side along a hull edge). A group whose
 * points are collinear is aligned with their line, identical points with the x axis.
 *
 * Why C: per instance, the same in numpy and qhull costs ~0.1-0.3 ms of call overhead; a frame has
 * dozens to hundreds of instances.
 *
 * points: (N, 3) float64; order, starts, ends: int64; out: (K, 7) float64 written as center x y z,
 * length (along yaw), width, height, yaw in (-pi/2, pi/2]. Every group must be non-empty.
 */
#include "_buffers.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double x, y;
} Pt;

static int by_x_then_y(const void *a, const void *b)
{
    const Pt *p = a, *q = b;
    if (p->x != q->x) return p->x < q->x ? -1 : 1;
    return (p->y > q->y) - (p->y < q->y);
}

static inline double cross(Pt o, Pt a, Pt b) { return (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x); }

/* Counter-clockwise hull of the m sorted points into hull (room for m + 1); returns its size (no
   collinear or repeated vertices: 1 for identical points, 2 for collinear ones). */
static Py_ssize_t monotone_chain(const Pt *p, Py_ssize_t m, Pt *hull)
{
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < m; i++) { /* lower hull */
        while (k >= 2 && cross(hull[k - 2], hull[k - 1], p[i]) <= 0) k--;
        hull[k++] = p[i];
    }
    for (Py_ssize_t i = m - 2, lower = k + 1; i >= 0; i--) { /* upper hull */
        while (k >= lower && cross(hull[k - 2], hull[k - 1], p[i]) <= 0) k--;
        hull[k++] = p[i];
    }
    k = k > 1 ? k - 1 : k; /* the last point is the first one again */
    if (k == 2 && hull[0].x == hull[1].x && hull[0].y == hull[1].y) k = 1;
    return k;
}

/* The angle of the hull edge with the least-area aligned rectangle. */
static double min_area_angle(const Pt *hull, Py_ssize_t h)
{
    if (h == 1) return 0.0;
    if (h == 2) return atan2(hull[1].y - hull[0].y, hull[1].x - hull[0].x);
    double best_area = INFINITY, best = 0.0;
    for (Py_ssize_t e = 0; e < h; e++) {
        const Pt a = hull[e], b = hull[(e + 1) % h];
        const double angle = atan2(b.y - a.y, b.x - a.x), c = cos(angle), s = sin(angle);
        double lo_a = INFINITY, hi_a = -INFINITY, lo_c = INFINITY, hi_c = -INFINITY;
        for (Py_ssize_t j = 0; j < h; j++) {
            const double along = hull[j].x * c + hull[j].y * s, across = -hull[j].x * s + hull[j].y * c;
            lo_a = along < lo_a ? along : lo_a;
            hi_a = along > hi_a ? along : hi_a;
            lo_c = across < lo_c ? across : lo_c;
            hi_c = across > hi_c ? across : hi_c;
        }
        const double area = (hi_a - lo_a) * (hi_c - lo_c);
        if (area < best_area) {
            best_area = area;
            best = angle;
        }
    }
    return best;
}

static void fit_group(const double *pts, const int64_t *idx, Py_ssize_t m, Pt *xy, Pt *hull, double *out)
{
    double zmin = INFINITY, zmax = -INFINITY;
    for (Py_ssize_t j = 0; j < m; j++) {
        const double *p = pts + 3 * idx[j];
        xy[j] = (Pt){p[0], p[1]};
        zmin = p[2] < zmin ? p[2] : zmin;
        zmax = p[2] > zmax ? p[2] : zmax;
    }
    qsort(xy, m, sizeof(Pt), by_x_then_y);
    const Py_ssize_t h = monotone_chain(xy, m, hull);
    double angle = min_area_angle(hull, h);
    const double c = cos(angle), s = sin(angle);
    double lo_x = INFINITY, hi_x = -INFINITY, lo_y = INFINITY, hi_y = -INFINITY;
    for (Py_ssize_t j = 0; j < h; j++) { /* box-aligned extents: attained at hull vertices */
        const double lx = hull[j].x * c + hull[j].y * s, ly = -hull[j].x * s + hull[j].y * c;
        lo_x = lx < lo_x ? lx : lo_x;
        hi_x = lx > hi_x ? lx : hi_x;
        lo_y = ly < lo_y ? ly : lo_y;
        hi_y = ly > hi_y ? ly : hi_y;
    }
    const double mx = (lo_x + hi_x) / 2, my = (lo_y + hi_y) / 2;
    double length = hi_x - lo_x, width = hi_y - lo_y;
    out[0] = c * mx - s * my;
    out[1] = s * mx + c * my;
    out[2] = (zmin + zmax) / 2;
    if (width > length) { /* the first side is the long one */
        const double t = length;
        length = width;
        width = t;
        angle += M_PI / 2;
    }
    out[3] = length;
    out[4] = width;
    out[5] = zmax - zmin;
    double r = fmod(M_PI / 2 - angle, M_PI); /* a box's yaw is defined modulo pi: into (-pi/2, pi/2] */
    if (r < 0) r += M_PI;
    out[6] = M_PI / 2 - r;
}

static PyObject *fit_boxes(PyObject *self, PyObject *args)
{
    PyObject *objs[5], *result = NULL;
    Py_buffer b[5] = {{0}};
    static const char *names[5] = {"points", "order", "starts", "ends", "out"};
    Pt *xy = NULL, *hull = NULL;
    if (!PyArg_ParseTuple(args, "OOOOO:fit_boxes", &objs[0], &objs[1], &objs[2], &objs[3], &objs[4])) return NULL;
    for (int i = 0; i < 5; i++)
        if (get_typed_buffer(objs[i], &b[i], i == 4, i == 0 || i == 4 ? 'd' : 'q', names[i]) < 0) goto done;
    const Py_ssize_t n = b[0].len / 24, total = b[1].len / 8, k = b[2].len / 8;
    if (b[0].ndim != 2 || b[0].shape[1] != 3 || b[3].len / 8 != k || b[4].len / 8 != 7 * k) {
        PyErr_SetString(PyExc_ValueError, "expected points (N, 3), starts and ends (K,), out (K, 7)");
        goto done;
    }
    const int64_t *order = b[1].buf, *starts = b[2].buf, *ends = b[3].buf;
    Py_ssize_t largest = 1;
    for (Py_ssize_t g = 0; g < k; g++) {
        if (!(starts[g] >= 0 && starts[g] < ends[g] && ends[g] <= total)) {
            PyErr_Format(PyExc_ValueError, "group %zd spans order[%lld:%lld] of %zd: groups must be non-empty",
                         g, (long long)starts[g], (long long)ends[g], total);
            goto done;
        }
        largest = ends[g] - starts[g] > largest ? ends[g] - starts[g] : largest;
    }
    for (Py_ssize_t j = 0; j < total; j++)
        if (!(order[j] >= 0 && order[j] < n)) {
            PyErr_Format(PyExc_ValueError, "order[%zd] = %lld is not a point index (N = %zd)", j, (long long)order[j], n);
            goto done;
        }
    if (!(xy = PyMem_RawMalloc(largest * sizeof(Pt))) || !(hull = PyMem_RawMalloc((2 * largest + 1) * sizeof(Pt)))) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t g = 0; g < k; g++)
        fit_group(b[0].buf, order + starts[g], ends[g] - starts[g], xy, hull, (double *)b[4].buf + 7 * g);
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    PyMem_RawFree(xy);
    PyMem_RawFree(hull);
    for (int i = 0; i < 5; i++)
        if (b[i].obj) PyBuffer_Release(&b[i]);
    return result;
}

static PyMethodDef methods[] = {
    {"fit_boxes", fit_boxes, METH_VARARGS,
     "fit_boxes(points, order, starts, ends, out): minimum-area oriented boxes of point groups. See _boxes.c."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_boxes", "Oriented boxes of point groups.", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__boxes(void) { return PyModule_Create(&module); }
