/* One check shared by the core's C kernels: a C-contiguous buffer holding items of one numpy type. */
#ifndef OV_PANOPTIC_BUFFERS_H
#define OV_PANOPTIC_BUFFERS_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Acquire `obj` as a C-contiguous (and, when `writable`, writable) buffer of `type` items: 'f' float32,
   'd' float64, 'H' uint16 or 'q' int64 (which numpy also names 'l'). Returns 0, or -1 with an exception
   naming `name`; the caller releases b whenever b->obj is set. */
static inline int get_typed_buffer(PyObject *obj, Py_buffer *b, int writable, char type, const char *name)
{
    if (PyObject_GetBuffer(obj, b, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) < 0)
        return -1;
    const char *f = b->format ? b->format : "B";
    if (*f == '<' || *f == '=' || *f == '@') f++;
    const char *type_name = type == 'f' ? "float32" : type == 'd' ? "float64" : type == 'H' ? "uint16" : "int64";
    const Py_ssize_t size = type == 'H' ? 2 : type == 'f' ? 4 : 8;
    if ((f[0] == type || (type == 'q' && f[0] == 'l')) && f[1] == 0 && b->itemsize == size) return 0;
    PyErr_Format(PyExc_ValueError, "%s must be a C-contiguous %s array, got format %s", name, type_name,
                 b->format ? b->format : "B");
    return -1;
}

#endif
