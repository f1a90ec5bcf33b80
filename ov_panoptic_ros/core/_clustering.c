/* radius_components(points, labels, radius, out) -> number of components
 *
 * Euclidean clustering: the connected components of the graph that links two points of the same label
 * whose distance is <= radius. Components are numbered 0, 1, ... in the order of their first point, so the
 * result is deterministic (the same numbering as scipy's connected_components over the radius graph).
 *
 * Why C: enumerating every linked pair (a KD-tree's query_pairs) costs ~0.5 s for 100k LiDAR points, as a
 * dense surface has dozens of points within a radius of each. A spanning forest needs far fewer tests:
 * points are hashed into cubic cells of side h = radius / sqrt(3) (a little less), so that all points of
 * one cell lie within the radius of each other and are joined at once; two cells at most 2 apart along
 * each axis are then searched for one linking pair, and not at all once they are already joined.
 *
 * points: (K, 3) float32, C-contiguous; labels: (K,) uint16; out: (K,) int64, writable.
 * Distances are computed in float64 from the float32 coordinates.
 */
#include "_buffers.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    int32_t x, y, z;
    uint32_t label;
} Key;

typedef struct {
    Key key;
    Py_ssize_t start, count; /* the cell's points: order[start .. start + count) */
    int used;
} Cell;

static inline uint64_t key_hash(const Key *k)
{
    uint64_t h = (uint64_t)(uint32_t)k->x * 0x9E3779B97F4A7C15ull;
    h ^= (uint64_t)(uint32_t)k->y * 0xC2B2AE3D27D4EB4Full + (h << 6) + (h >> 2);
    h ^= (uint64_t)(uint32_t)k->z * 0x165667B19E3779F9ull + (h << 6) + (h >> 2);
    h ^= (uint64_t)k->label * 0x27D4EB2F165667C5ull + (h << 6) + (h >> 2);
    return h ^ (h >> 31);
}

static inline int key_equal(const Key *a, const Key *b)
{
    return a->x == b->x && a->y == b->y && a->z == b->z && a->label == b->label;
}

/* The slot of `k` in the open-addressing table (mask + 1 slots): its cell, or the empty slot for it. */
static inline Py_ssize_t find_slot(const Cell *table, uint64_t mask, const Key *k)
{
    uint64_t s = key_hash(k) & mask;
    while (table[s].used && !key_equal(&table[s].key, k)) s = (s + 1) & mask;
    return (Py_ssize_t)s;
}

static inline Py_ssize_t find_root(Py_ssize_t *parent, Py_ssize_t a)
{
    while (parent[a] != a) {
        parent[a] = parent[parent[a]]; /* path halving */
        a = parent[a];
    }
    return a;
}

static inline void join(Py_ssize_t *parent, Py_ssize_t *size, Py_ssize_t a, Py_ssize_t b)
{
    a = find_root(parent, a);
    b = find_root(parent, b);
    if (a == b) return;
    if (size[a] < size[b]) { Py_ssize_t t = a; a = b; b = t; }
    parent[b] = a;
    size[a] += size[b];
}

static inline double dist2(const float *p, const float *q)
{
    const double dx = (double)p[0] - q[0], dy = (double)p[1] - q[1], dz = (double)p[2] - q[2];
    return dx * dx + dy * dy + dz * dz;
}

/* Returns the number of components, or -1 when memory runs out. keys: the cell of each point. */
static Py_ssize_t components(const float *pts, const Key *keys, Py_ssize_t n, double radius, int64_t *out)
{
    if (n == 0) return 0;
    uint64_t slots = 1;
    while (slots < 2 * (uint64_t)n) slots <<= 1;
    const uint64_t mask = slots - 1;
    Cell *table = calloc(slots, sizeof(Cell));
    Py_ssize_t *cell_of = malloc(n * sizeof(Py_ssize_t)), *order = malloc(n * sizeof(Py_ssize_t));
    Py_ssize_t *parent = malloc(n * sizeof(Py_ssize_t)), *size = malloc(n * sizeof(Py_ssize_t));
    Py_ssize_t *cells = malloc(n * sizeof(Py_ssize_t)); /* slots of the used cells, in first-point order */
    Py_ssize_t ncells = 0, result = -1;
    if (!table || !cell_of || !order || !parent || !size || !cells) goto done;

    for (Py_ssize_t i = 0; i < n; i++) { /* count the points of each cell */
        Py_ssize_t s = find_slot(table, mask, &keys[i]);
        if (!table[s].used) {
            table[s].used = 1;
            table[s].key = keys[i];
            cells[ncells++] = s;
        }
        table[s].count++;
        cell_of[i] = s;
    }
    Py_ssize_t start = 0;
    for (Py_ssize_t c = 0; c < ncells; c++) {
        Cell *cell = &table[cells[c]];
        cell->start = start;
        start += cell->count;
        cell->count = 0;
    }
    for (Py_ssize_t i = 0; i < n; i++) { /* each cell's points, contiguous and in point order */
        Cell *cell = &table[cell_of[i]];
        order[cell->start + cell->count++] = i;
    }
    for (Py_ssize_t c = 0; c < ncells; c++) { /* a cell's points are all within the radius: one tree */
        const Cell *cell = &table[cells[c]];
        const Py_ssize_t first = order[cell->start];
        for (Py_ssize_t j = 0; j < cell->count; j++) {
            parent[order[cell->start + j]] = first;
            size[order[cell->start + j]] = 1;
        }
        size[first] = cell->count;
    }
    const double r2 = radius * radius;
    for (Py_ssize_t c = 0; c < ncells; c++) { /* neighbour cells: each unordered pair once */
        const Cell *a = &table[cells[c]];
        for (int dx = -2; dx <= 2; dx++)
            for (int dy = -2; dy <= 2; dy++)
                for (int dz = -2; dz <= 2; dz++) {
                    if (dx < 0 || (dx == 0 && (dy < 0 || (dy == 0 && dz <= 0)))) continue;
                    const Key k = {a->key.x + dx, a->key.y + dy, a->key.z + dz, a->key.label};
                    const Cell *b = &table[find_slot(table, mask, &k)];
                    if (!b->used) continue;
                    const Py_ssize_t pa = order[a->start], pb = order[b->start];
                    if (find_root(parent, pa) == find_root(parent, pb)) continue;
                    int linked = 0;
                    for (Py_ssize_t u = 0; u < a->count && !linked; u++) {
                        const float *p = pts + 3 * order[a->start + u];
                        for (Py_ssize_t v = 0; v < b->count; v++)
                            if (dist2(p, pts + 3 * order[b->start + v]) <= r2) {
                                linked = 1;
                                break;
                            }
                    }
                    if (linked) join(parent, size, pa, pb);
                }
    }
    /* number the components by their first point: reuse `size` as root -> component (-1: not yet) */
    for (Py_ssize_t i = 0; i < n; i++) size[i] = -1;
    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const Py_ssize_t root = find_root(parent, i);
        if (size[root] < 0) size[root] = count++;
        out[i] = size[root];
    }
    result = count;
done:
    free(table);
    free(cell_of);
    free(order);
    free(parent);
    free(size);
    free(cells);
    return result;
}

static PyObject *radius_components(PyObject *self, PyObject *args)
{
    PyObject *pts_obj, *lab_obj, *out_obj, *result = NULL;
    double radius;
    Py_buffer pts = {0}, lab = {0}, out = {0};
    Key *keys = NULL;
    if (!PyArg_ParseTuple(args, "OOdO:radius_components", &pts_obj, &lab_obj, &radius, &out_obj)) return NULL;
    if (!(radius > 0) || !isfinite(radius)) {
        PyErr_Format(PyExc_ValueError, "radius must be a positive number, got %g", radius);
        return NULL;
    }
    if (get_typed_buffer(pts_obj, &pts, 0, 'f', "points") < 0 || get_typed_buffer(lab_obj, &lab, 0, 'H', "labels") < 0 ||
        get_typed_buffer(out_obj, &out, 1, 'q', "out") < 0)
        goto done;
    const Py_ssize_t n = pts.ndim == 2 ? pts.shape[0] : -1;
    if (pts.ndim != 2 || pts.shape[1] != 3 || lab.ndim != 1 || lab.shape[0] != n || out.ndim != 1 ||
        out.shape[0] != n) {
        PyErr_SetString(PyExc_ValueError, "expected points (K, 3) float32, labels (K,) uint16 and out (K,) int64, "
                                          "all C-contiguous");
        goto done;
    }
    if (!(keys = PyMem_RawMalloc((n ? n : 1) * sizeof(Key)))) {
        PyErr_NoMemory();
        goto done;
    }
    /* a cell's diagonal must stay below the radius after rounding: a little under radius / sqrt(3) */
    const double inv_h = sqrt(3.0) / radius * (1.0 + 1e-6);
    const float *p = pts.buf;
    const uint16_t *labels = lab.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        double c[3];
        for (int a = 0; a < 3; a++) {
            c[a] = floor((double)p[3 * i + a] * inv_h);
            if (!(fabs(c[a]) < (double)(1 << 30))) { /* also NaN */
                PyErr_Format(PyExc_ValueError, "point %zd (%g, %g, %g) is not finite or too far from the origin to "
                             "cluster with radius %g", i, p[3 * i], p[3 * i + 1], p[3 * i + 2], radius);
                goto done;
            }
        }
        keys[i] = (Key){(int32_t)c[0], (int32_t)c[1], (int32_t)c[2], labels[i]};
    }
    Py_ssize_t count;
    Py_BEGIN_ALLOW_THREADS
    count = components(p, keys, n, radius, out.buf);
    Py_END_ALLOW_THREADS
    if (count < 0) {
        PyErr_NoMemory();
        goto done;
    }
    result = PyLong_FromSsize_t(count);
done:
    PyMem_RawFree(keys);
    if (pts.obj) PyBuffer_Release(&pts);
    if (lab.obj) PyBuffer_Release(&lab);
    if (out.obj) PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"radius_components", radius_components, METH_VARARGS,
     "radius_components(points, labels, radius, out) -> count: connected components of same-label points\n"
     "linked within radius, numbered by first point. See _clustering.c."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_clustering", "Euclidean clustering.", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__clustering(void) { return PyModule_Create(&module); }
