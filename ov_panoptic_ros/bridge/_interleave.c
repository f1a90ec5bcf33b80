/* interleave(dst, point_step, n, columns): per-point columns -> PointCloud2 rows, for messages.pack_cloud.
 *
 * Why C: numpy copies a strided column one element at a time (~0.55 ns per element whatever its size),
 * so interleaving 8 four-byte columns of 200k points cost ~5 memcpys of the payload.
 *
 * columns: a sequence of (src, dst_offset) or (src, dst_offset, lut). src exports a strided buffer (any
 * numpy array, views included): 0-d (one value for every point), (n,) or (n, count); its itemsize * count
 * bytes go to dst_offset of every row. With a lut (a C-contiguous buffer of K entries), src holds unsigned
 * indices and the entry lut[min(index, K - 1)] is written instead: a palette lookup in the same pass.
 * Every byte of dst is written, padding as zero, so dst need not be zeroed. Sources are read only where
 * their buffer says items are: strided and unaligned views work as they are.
 *
 * Two engines write the same bytes:
 * - pieces: per block of rows, one tight loop per column and per padding gap (fixed-size memcpy: one
 *   move). Any layout, but one store per field per point (~1.3 cycles each, measured).
 * - words (SSE2; point_step a multiple of 4, 16..1024): each 4-byte word of a row is a stream of per-point
 *   values, read in place (a contiguous 4-byte column) or first built in a small tile (strided columns,
 *   fields smaller than a word, constants, padding, lookups of 4-byte entries at a word offset); 4x4
 *   transposes then write 16 bytes of 4 rows at
 *   a time. ~3x faster than pieces on the node's 8-field layout: ~1.3 memcpys of the payload.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define BLOCK 64 /* rows per block: its rows and word tiles (BLOCK * 4 bytes each) stay in L1; 64-128 measured best */

typedef struct {
    const char *src;
    Py_ssize_t stride, size, off; /* size bytes from src + i * stride go to row i + off */
    const char *lut;              /* lookup pieces: src holds isize-byte indices into nlut entries */
    Py_ssize_t nlut, isize;
} Piece;

static const char ZEROS[16];

static inline Py_ssize_t lut_index(const char *s, Py_ssize_t isize, Py_ssize_t nlut)
{
    uint64_t v;
    switch (isize) {
    case 1: v = *(const uint8_t *)s; break;
    case 2: { uint16_t u; memcpy(&u, s, 2); v = u; break; }
    case 4: { uint32_t u; memcpy(&u, s, 4); v = u; break; }
    default: memcpy(&v, s, 8); break;
    }
    return v < (uint64_t)nlut ? (Py_ssize_t)v : nlut - 1;
}

/* ------------------------------------------------------------------------------------- pieces engine */
#define COPY_ROWS(SIZE) for (; d != end; s += st, d += step) memcpy(d, s, SIZE)
#define LUT_ROWS(SIZE, ISIZE) \
    for (; d != end; s += st, d += step) memcpy(d, lut + lut_index(s, ISIZE, nlut) * (SIZE), SIZE)

static void pieces_engine(char *dst, Py_ssize_t step, Py_ssize_t r0, Py_ssize_t r1, const Piece *pc,
                          Py_ssize_t npc)
{
    for (Py_ssize_t i0 = r0; i0 < r1; i0 += BLOCK) {
        Py_ssize_t m = r1 - i0 < BLOCK ? r1 - i0 : BLOCK;
        for (const Piece *p = pc; p < pc + npc; p++) {
            const Py_ssize_t st = p->stride;
            const char *s = p->src + i0 * st;
            char *d = dst + i0 * step + p->off, *const end = d + m * step;
            if (p->lut) {
                const char *const lut = p->lut; /* locals: dst stores could alias *p */
                const Py_ssize_t nlut = p->nlut;
                if (p->size == 4 && p->isize == 2) LUT_ROWS(4, 2); /* class colours: one move per read */
                else LUT_ROWS(p->size, p->isize);
                continue;
            }
            switch (p->size) { /* fixed sizes: the compiler emits a single move */
            case 1: COPY_ROWS(1); break;
            case 2: COPY_ROWS(2); break;
            case 4: COPY_ROWS(4); break;
            case 8: COPY_ROWS(8); break;
            case 12: COPY_ROWS(12); break;
            default: COPY_ROWS(p->size); break;
            }
        }
    }
}

/* -------------------------------------------------------------------------------------- words engine */
#if defined(__SSE2__)
typedef struct {
    const char *src;
    Py_ssize_t stride;
    int at, len;     /* bytes [at, at + len) of the word */
    const char *lut; /* a lookup of 4-byte entries (LOOKUP words): src holds isize-byte indices */
    Py_ssize_t nlut, isize;
} Seg;

/* DIRECT: a contiguous 4-byte column, read in place. Everything else goes through the word's tile:
   CONST (constants and padding, filled once), GATHER (a whole word at another stride), XYZ (three
   gathered words that are packed 12-byte rows; it also fills the next two words' tiles, marked FILLED),
   COMPOSITE (parts of the word from different columns), LOOKUP (a word-aligned column of 4-byte lookup
   entries: the node's class colours). XYZ_ROWS: such a run that starts a group of 4 words no other
   group reads: its rows are shuffled straight from the source, no tiles (the node's case). */
enum { DIRECT, CONST, GATHER, XYZ, FILLED, COMPOSITE, XYZ_ROWS, LOOKUP };

typedef struct {
    int kind, nseg;
    uint32_t bits; /* the constant bytes of the word */
    Seg seg[4];
    uint32_t *tile;
} Word;

static void plan_words(Word *w, Py_ssize_t nw, const Piece *pc, Py_ssize_t npc, uint32_t *tiles)
{
    memset(w, 0, nw * sizeof(Word));
    for (const Piece *p = pc; p < pc + npc; p++) /* split each piece at word boundaries */
        for (Py_ssize_t b = p->off; b < p->off + p->size;) {
            Word *x = &w[b / 4];
            int at = (int)(b % 4), len = (int)(p->off + p->size - b < 4 - at ? p->off + p->size - b : 4 - at);
            const char *src = p->src + (b - p->off);
            if (p->lut) /* word-aligned 4-byte entries (checked by words_fit) */
                x->seg[x->nseg++] = (Seg){p->src, p->stride, 0, 4, p->lut, p->nlut, p->isize};
            else if (p->stride == 0)
                memcpy((char *)&x->bits + at, src, len);
            else
                x->seg[x->nseg++] = (Seg){src, p->stride, at, len, NULL, 0, 0};
            b += len;
        }
    for (Py_ssize_t k = 0; k < nw; k++) {
        Word *x = &w[k];
        x->tile = tiles + k * BLOCK;
        if (x->nseg == 0) {
            x->kind = CONST;
            for (int r = 0; r < BLOCK; r++) x->tile[r] = x->bits;
        } else if (x->nseg == 1 && x->seg[0].lut)
            x->kind = LOOKUP;
        else if (x->nseg == 1 && x->seg[0].len == 4)
            x->kind = x->seg[0].stride == 4 ? DIRECT : GATHER;
        else
            x->kind = COMPOSITE;
    }
    for (Py_ssize_t k = 0; k + 2 < nw; k++) /* x, y, z of an (N, 3) float32 array: the node's points */
        if (w[k].kind == GATHER && w[k + 1].kind == GATHER && w[k + 2].kind == GATHER &&
            w[k].seg[0].stride == 12 && w[k + 1].seg[0].stride == 12 && w[k + 2].seg[0].stride == 12 &&
            w[k + 1].seg[0].src == w[k].seg[0].src + 4 && w[k + 2].seg[0].src == w[k].seg[0].src + 8) {
            /* words k..k+2 are read by group k only, unless the last group (at nw - 4) overlaps them */
            w[k].kind = k % 4 == 0 && k + 4 <= nw && (nw % 4 == 0 || k + 2 < nw - 4) ? XYZ_ROWS : XYZ;
            w[k + 1].kind = w[k + 2].kind = FILLED;
            k += 2;
        }
}

/* The word's values for rows i0 .. i0 + m (m a multiple of 4): in place, or built in its tile. Tiles are
   filled with 16-byte stores where possible: stores, not loads, are what this costs. */
static const char *word_stream(const Word *x, Py_ssize_t i0, Py_ssize_t m)
{
    uint32_t *t = x->tile;
    const Seg *g = &x->seg[0];
    const Py_ssize_t st = g->stride;
    const char *s = g->src + i0 * st;
    switch (x->kind) {
    case DIRECT: case XYZ_ROWS: return s;
    case CONST: case FILLED: return (const char *)t;
    case GATHER:
        for (Py_ssize_t r = 0; r < m; r += 4, s += 4 * st) {
            uint32_t v0, v1, v2, v3;
            memcpy(&v0, s, 4); memcpy(&v1, s + st, 4); memcpy(&v2, s + 2 * st, 4); memcpy(&v3, s + 3 * st, 4);
            __m128i lo = _mm_unpacklo_epi32(_mm_cvtsi32_si128((int)v0), _mm_cvtsi32_si128((int)v1));
            __m128i hi = _mm_unpacklo_epi32(_mm_cvtsi32_si128((int)v2), _mm_cvtsi32_si128((int)v3));
            _mm_storeu_si128((__m128i *)&t[r], _mm_unpacklo_epi64(lo, hi));
        }
        return (const char *)t;
    case LOOKUP: {
        const char *const lut = g->lut;
        const Py_ssize_t nlut = g->nlut;
        if (g->isize == 2) /* uint16 labels */
            for (Py_ssize_t r = 0; r < m; r++, s += st) memcpy(&t[r], lut + 4 * lut_index(s, 2, nlut), 4);
        else
            for (Py_ssize_t r = 0; r < m; r++, s += st) memcpy(&t[r], lut + 4 * lut_index(s, g->isize, nlut), 4);
        return (const char *)t;
    }
    case XYZ: { /* 4 rows are 48 bytes x0 y0 z0 x1 | y1 z1 x2 y2 | z2 x3 y3 z3: 3 loads, 5 shuffles */
        float *tx = (float *)t, *ty = (float *)x[1].tile, *tz = (float *)x[2].tile;
        for (Py_ssize_t r = 0; r < m; r += 4, s += 48) {
            __m128 p0 = _mm_loadu_ps((const float *)s), p1 = _mm_loadu_ps((const float *)(s + 16));
            __m128 p2 = _mm_loadu_ps((const float *)(s + 32));
            __m128 a = _mm_shuffle_ps(p1, p2, _MM_SHUFFLE(1, 0, 3, 2)); /* x2 y2 z2 x3 */
            __m128 b = _mm_shuffle_ps(p0, p1, _MM_SHUFFLE(1, 0, 2, 1)); /* y0 z0 y1 z1 */
            __m128 c = _mm_shuffle_ps(a, p2, _MM_SHUFFLE(3, 2, 2, 1));  /* y2 z2 y3 z3 */
            _mm_storeu_ps(tx + r, _mm_shuffle_ps(p0, a, _MM_SHUFFLE(3, 0, 3, 0)));
            _mm_storeu_ps(ty + r, _mm_shuffle_ps(b, c, _MM_SHUFFLE(2, 0, 2, 0)));
            _mm_storeu_ps(tz + r, _mm_shuffle_ps(b, c, _MM_SHUFFLE(3, 1, 3, 1)));
        }
        return (const char *)t;
    }
    }
    if (x->nseg == 1 && g->len == 2) { /* a 16-bit field and constants (label + vocab_version) */
        const int shift = 8 * g->at;   /* x86 is little-endian */
        if (st == 2)                   /* contiguous: a constant stride, which the compiler vectorises */
            for (Py_ssize_t r = 0; r < m; r++) {
                uint16_t v;
                memcpy(&v, s + 2 * r, 2);
                t[r] = x->bits | (uint32_t)v << shift;
            }
        else
            for (Py_ssize_t r = 0; r < m; r++, s += st) {
                uint16_t v;
                memcpy(&v, s, 2);
                t[r] = x->bits | (uint32_t)v << shift;
            }
        return (const char *)t;
    }
    for (Py_ssize_t r = 0; r < m; r++) t[r] = x->bits; /* any other mix: byte stores into the tile */
    for (int k = 0; k < x->nseg; k++) {
        g = &x->seg[k];
        s = g->src + i0 * g->stride;
        for (Py_ssize_t r = 0; r < m; r++, s += g->stride) memcpy((char *)&t[r] + g->at, s, g->len);
    }
    return (const char *)t;
}

/* Rows r0 .. r1 (a multiple of 4 rows) of 4 * nw bytes, nw >= 4. */
static void words_engine(char *dst, Py_ssize_t nw, Py_ssize_t r0, Py_ssize_t r1, const Word *w,
                         const char **streams)
{
    const Py_ssize_t step = 4 * nw;
    for (Py_ssize_t i0 = r0; i0 < r1; i0 += BLOCK) {
        Py_ssize_t m = r1 - i0 < BLOCK ? r1 - i0 : BLOCK;
        for (Py_ssize_t k = 0; k < nw; k++) streams[k] = word_stream(&w[k], i0, m);
        /* groups of 4 words; when nw is not a multiple of 4 the last group overlaps the one before it
           (rewriting the same values), so no store crosses a row's end */
        for (Py_ssize_t g = 0; g < nw; g += 4) {
            Py_ssize_t g0 = g + 4 <= nw ? g : nw - 4;
            const char *s0 = streams[g0], *s1 = streams[g0 + 1], *s2 = streams[g0 + 2], *s3 = streams[g0 + 3];
            char *d = dst + i0 * step + 4 * g0;
            if (w[g0].kind == XYZ_ROWS) { /* rows x y z q from 48 bytes x0 y0 z0 x1 | y1 z1 x2 y2 | z2 x3 y3 z3 */
                for (Py_ssize_t r = 0; r < m; r += 4, d += 4 * step, s0 += 48) {
                    __m128 p0 = _mm_loadu_ps((const float *)s0), p1 = _mm_loadu_ps((const float *)(s0 + 16));
                    __m128 p2 = _mm_loadu_ps((const float *)(s0 + 32));
                    __m128 q = _mm_loadu_ps((const float *)(s3 + 4 * r)); /* the group's 4th word */
                    __m128 a = _mm_shuffle_ps(p0, q, _MM_SHUFFLE(0, 0, 0, 2));  /* z0 x0 q0 q0 */
                    __m128 b = _mm_shuffle_ps(p0, p1, _MM_SHUFFLE(1, 0, 3, 3)); /* x1 x1 y1 z1 */
                    __m128 c = _mm_shuffle_ps(p1, q, _MM_SHUFFLE(1, 1, 1, 1));  /* z1 z1 q1 q1 */
                    __m128 e = _mm_shuffle_ps(p2, q, _MM_SHUFFLE(2, 2, 0, 0));  /* z2 z2 q2 q2 */
                    __m128 f = _mm_shuffle_ps(p2, q, _MM_SHUFFLE(3, 3, 3, 3));  /* z3 z3 q3 q3 */
                    _mm_storeu_ps((float *)d, _mm_shuffle_ps(p0, a, _MM_SHUFFLE(2, 0, 1, 0)));
                    _mm_storeu_ps((float *)(d + step), _mm_shuffle_ps(b, c, _MM_SHUFFLE(2, 0, 2, 0)));
                    _mm_storeu_ps((float *)(d + 2 * step), _mm_shuffle_ps(p1, e, _MM_SHUFFLE(2, 0, 3, 2)));
                    _mm_storeu_ps((float *)(d + 3 * step), _mm_shuffle_ps(p2, f, _MM_SHUFFLE(2, 0, 2, 1)));
                }
                continue;
            }
            for (Py_ssize_t r = 0; r < m; r += 4, d += 4 * step) {
                __m128i a = _mm_loadu_si128((const __m128i *)(s0 + 4 * r));
                __m128i b = _mm_loadu_si128((const __m128i *)(s1 + 4 * r));
                __m128i c = _mm_loadu_si128((const __m128i *)(s2 + 4 * r));
                __m128i e = _mm_loadu_si128((const __m128i *)(s3 + 4 * r));
                __m128i ab0 = _mm_unpacklo_epi32(a, b), ab1 = _mm_unpackhi_epi32(a, b);
                __m128i ce0 = _mm_unpacklo_epi32(c, e), ce1 = _mm_unpackhi_epi32(c, e);
                _mm_storeu_si128((__m128i *)d, _mm_unpacklo_epi64(ab0, ce0));
                _mm_storeu_si128((__m128i *)(d + step), _mm_unpackhi_epi64(ab0, ce0));
                _mm_storeu_si128((__m128i *)(d + 2 * step), _mm_unpacklo_epi64(ab1, ce1));
                _mm_storeu_si128((__m128i *)(d + 3 * step), _mm_unpackhi_epi64(ab1, ce1));
            }
        }
    }
}
#endif

/* ------------------------------------------------------------------------------------------ binding */
/* Validate column k: acquire its buffers (b, and lb for a lookup table), check shapes and sizes, and that
   its bytes [off[k], off[k] + size[k]) overlap no earlier column's. Returns its piece count, or -1 with an
   exception set. */
static Py_ssize_t check_column(PyObject *item, Py_ssize_t k, Py_ssize_t step, Py_ssize_t n, Py_buffer *b,
                               Py_buffer *lb, Py_ssize_t *offs, Py_ssize_t *sizes)
{
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) < 2 || PyTuple_GET_SIZE(item) > 3) {
        PyErr_Format(PyExc_ValueError, "column %zd: expected a (src, dst_offset[, lut]) tuple", k);
        return -1;
    }
    Py_ssize_t off = PyNumber_AsSsize_t(PyTuple_GET_ITEM(item, 1), PyExc_OverflowError);
    if (off == -1 && PyErr_Occurred()) return -1;
    if (PyObject_GetBuffer(PyTuple_GET_ITEM(item, 0), b, PyBUF_STRIDES) < 0) return -1;
    if (b->ndim > 2) {
        PyErr_Format(PyExc_ValueError, "column %zd: source has %d dimensions, expected 0, 1 or 2", k, b->ndim);
        return -1;
    }
    if (b->ndim >= 1 && b->shape[0] != n) {
        PyErr_Format(PyExc_ValueError, "column %zd: source has %zd points, expected n=%zd", k, b->shape[0], n);
        return -1;
    }
    Py_ssize_t count = b->ndim == 2 ? b->shape[1] : 1, size = b->itemsize * count;
    if (PyTuple_GET_SIZE(item) == 3) {
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(item, 2), lb, PyBUF_ND) < 0) return -1; /* C-contiguous */
        if (b->ndim > 1 || (b->itemsize != 1 && b->itemsize != 2 && b->itemsize != 4 && b->itemsize != 8)) {
            PyErr_Format(PyExc_ValueError, "column %zd: lookup indices must be 0-d or (n,), of 1, 2, 4 or 8 bytes",
                         k);
            return -1;
        }
        Py_ssize_t nlut = lb->ndim >= 1 ? lb->shape[0] : 0;
        if (nlut < 1 || lb->len % nlut) {
            PyErr_Format(PyExc_ValueError, "column %zd: the lookup table has no entries", k);
            return -1;
        }
        count = 1;
        size = lb->len / nlut;
    }
    if (off < 0 || size > step || off > step - size) {
        PyErr_Format(PyExc_ValueError, "column %zd: %zd bytes at dst_offset %zd do not fit in point_step %zd", k,
                     size, off, step);
        return -1;
    }
    for (Py_ssize_t j = 0; j < k; j++)
        if (size && sizes[j] && off < offs[j] + sizes[j] && offs[j] < off + size) {
            PyErr_Format(PyExc_ValueError, "column %zd: bytes %zd..%zd of a point overlap column %zd", k, off,
                         off + size - 1, j);
            return -1;
        }
    offs[k] = off;
    sizes[k] = size;
    return size ? count : 0;
}

/* A checked column as pieces: one, or one per element when its rows are not contiguous. */
static Py_ssize_t column_pieces(const Py_buffer *b, const Py_buffer *lb, Py_ssize_t off, Py_ssize_t n, Piece *out)
{
    Py_ssize_t stride = b->ndim >= 1 && n > 1 ? b->strides[0] : 0; /* 0-d or one row: a constant */
    Py_ssize_t count = b->ndim == 2 ? b->shape[1] : 1;
    if (lb->obj) {
        Py_ssize_t nlut = lb->shape[0], size = lb->len / nlut;
        if (stride == 0) /* a constant index: its entry is a constant */
            out[0] = (Piece){(const char *)lb->buf + lut_index(b->buf, b->itemsize, nlut) * size, 0, size, off,
                             NULL, 0, 0};
        else
            out[0] = (Piece){b->buf, stride, size, off, lb->buf, nlut, b->itemsize};
        return 1;
    }
    if (b->itemsize * count == 0) return 0;
    if (count == 1 || b->strides[1] == b->itemsize) {
        out[0] = (Piece){b->buf, stride, b->itemsize * count, off, NULL, 0, 0};
        return 1;
    }
    for (Py_ssize_t j = 0; j < count; j++)
        out[j] = (Piece){(const char *)b->buf + j * b->strides[1], stride, b->itemsize, off + j * b->itemsize,
                         NULL, 0, 0};
    return count;
}

static PyObject *interleave(PyObject *self, PyObject *args)
{
    PyObject *dst_obj, *columns, *seq = NULL, *result = NULL;
    Py_ssize_t step, n, ncol = 0, npc = 0, max_pieces = 1, k, got, *offs = NULL, *sizes;
    Py_buffer dst = {0}, *bufs = NULL;
    Piece *pc = NULL;
    char *covered = NULL;

    if (!PyArg_ParseTuple(args, "OnnO:interleave", &dst_obj, &step, &n, &columns)) return NULL;
    if (step <= 0 || n < 0) {
        PyErr_Format(PyExc_ValueError, "point_step must be > 0 and n >= 0, got point_step=%zd n=%zd", step, n);
        return NULL;
    }
    if (PyObject_GetBuffer(dst_obj, &dst, PyBUF_WRITABLE) < 0) return NULL;
    if (n > PY_SSIZE_T_MAX / step || dst.len != n * step) {
        PyErr_Format(PyExc_ValueError, "dst has %zd bytes, expected n*point_step = %zd*%zd", dst.len, n, step);
        goto done;
    }
    if (!(seq = PySequence_Fast(columns, "columns must be a sequence of (src, dst_offset[, lut]) tuples")))
        goto done;
    ncol = PySequence_Fast_GET_SIZE(seq);
    bufs = PyMem_Calloc(2 * ncol + 1, sizeof(Py_buffer)); /* sources, then lookup tables */
    offs = PyMem_Calloc(2 * ncol + 1, sizeof(Py_ssize_t));
    if (!bufs || !offs) { PyErr_NoMemory(); goto done; }
    sizes = offs + ncol;
    for (k = 0; k < ncol; k++) { /* validate every column before writing anything */
        got = check_column(PySequence_Fast_GET_ITEM(seq, k), k, step, n, &bufs[k], &bufs[ncol + k], offs, sizes);
        if (got < 0) goto done;
        max_pieces += got;
    }
    if (n == 0) { result = Py_NewRef(Py_None); goto done; }
    if (!(covered = PyMem_Calloc(step, 1))) { PyErr_NoMemory(); goto done; } /* step <= dst.len */
    for (k = 0; k < ncol; k++) memset(covered + offs[k], 1, sizes[k]);
    for (k = 0; k < step; k++) max_pieces += !covered[k]; /* padding: at most one piece per byte */
    if (!(pc = PyMem_Calloc(max_pieces, sizeof(Piece)))) { PyErr_NoMemory(); goto done; }
    for (k = 0; k < ncol; k++) npc += column_pieces(&bufs[k], &bufs[ncol + k], offs[k], n, pc + npc);
    for (k = 0; k < step;) { /* padding: zero pieces of up to 16 bytes */
        if (covered[k]) { k++; continue; }
        Py_ssize_t e = k;
        while (e < step && !covered[e] && e - k < 16) e++;
        pc[npc++] = (Piece){ZEROS, 0, e - k, k, NULL, 0, 0};
        k = e;
    }

    Py_ssize_t words_rows = 0;
#if defined(__SSE2__)
    Py_ssize_t nw = step / 4;
    Word *words = NULL;
    uint32_t *tiles = NULL;
    const char **streams = NULL;
    int words_fit = 1; /* lookups in the words engine: 4-byte entries at word offsets, not constants */
    for (k = 0; k < npc; k++)
        if (pc[k].lut) words_fit &= pc[k].size == 4 && pc[k].off % 4 == 0;
    if (step % 4 == 0 && nw >= 4 && nw <= 256 && n >= 4 && words_fit) { /* tiles: up to 64 KiB */
        words = PyMem_Malloc(nw * sizeof(Word));
        tiles = PyMem_Malloc(nw * BLOCK * sizeof(uint32_t));
        streams = PyMem_Malloc(nw * sizeof(char *));
        if (!words || !tiles || !streams) {
            PyMem_Free(words); PyMem_Free(tiles); PyMem_Free(streams);
            PyErr_NoMemory();
            goto done;
        }
        plan_words(words, nw, pc, npc, tiles);
        words_rows = n - n % 4;
    }
#endif
    Py_BEGIN_ALLOW_THREADS /* the sources and dst stay held (bufs, dst) until the copy is done */
#if defined(__SSE2__)
    if (words_rows) words_engine(dst.buf, nw, 0, words_rows, words, streams);
#endif
    pieces_engine(dst.buf, step, words_rows, n, pc, npc); /* everything, or the last n % 4 rows */
    Py_END_ALLOW_THREADS
#if defined(__SSE2__)
    PyMem_Free(words); PyMem_Free(tiles); PyMem_Free(streams);
#endif
    result = Py_NewRef(Py_None);

done:
    if (bufs)
        for (k = 0; k < 2 * ncol; k++)
            if (bufs[k].obj) PyBuffer_Release(&bufs[k]);
    PyMem_Free(bufs);
    PyMem_Free(offs);
    PyMem_Free(pc);
    PyMem_Free(covered);
    Py_XDECREF(seq);
    if (dst.obj) PyBuffer_Release(&dst);
    return result;
}

static PyMethodDef methods[] = {
    {"interleave", interleave, METH_VARARGS,
     "interleave(dst, point_step, n, columns): write every (src, dst_offset[, lut]) column into each of the n\n"
     "rows of dst (n * point_step bytes), padding as zero. See _interleave.c."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_interleave", "PointCloud2 row interleaving.", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__interleave(void) { return PyModule_Create(&module); }
