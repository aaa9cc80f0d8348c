/* The per-row work of the validator's typed path, in C: swift_ext.datasets.fastpath._row_summary is the same function in
 * Python (the fallback when this is not built, and the reference a test compares it with).
 *
 * summary(messages, images, videos, audios, files_ok, hash128)
 *     -> (n_image, n_video, n_audio, n_system, digest) or None
 *
 * `messages` is a sequence of msgspec structs with `role` and `content` strings (the typed decode made sure),
 * the media are None or lists of str. None means "not clean, take the full check": the roles are not an
 * optional system turn then user/assistant alternating and ending on the assistant, the last content is
 * empty, a <think> or </think> tag is present, a media list does not match its <image>/<video>/<audio>
 * count, or names an entry not in `files_ok` (entries already seen to be existing files). The digest is
 * hash128 of an unambiguous byte encoding of the roles, contents and media (see _plain_preimage). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static PyObject *str_role, *str_content, *str_messages, *str_media[3];

typedef struct {
    char *buf;
    Py_ssize_t len, cap;
} Buffer;

static int buf_reserve(Buffer *b, Py_ssize_t extra) {
    if (b->len + extra <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    char *p = PyMem_Realloc(b->buf, cap);
    if (!p) { PyErr_NoMemory(); return -1; }
    b->buf = p;
    b->cap = cap;
    return 0;
}

static int buf_put(Buffer *b, const char *data, Py_ssize_t n) {
    if (buf_reserve(b, n)) return -1;
    memcpy(b->buf + b->len, data, n);
    b->len += n;
    return 0;
}

static int buf_u32(Buffer *b, Py_ssize_t n) {
    unsigned char le[4] = {n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >> 24) & 0xff};
    return buf_put(b, (const char *)le, 4);
}

static int buf_str(Buffer *b, const char *s, Py_ssize_t n) {
    return buf_u32(b, n) || buf_put(b, s, n);
}

/* Message i of n: an optional system turn first, then user, assistant, user, ... ending on the assistant. */
static int role_in_order(const char *r, Py_ssize_t rn, Py_ssize_t i, Py_ssize_t n, Py_ssize_t *n_system) {
    if (i == 0 && rn == 6 && !memcmp(r, "system", 6)) {
        *n_system = 1;
        return n > 1;
    }
    Py_ssize_t k = i - *n_system;  /* position after the system turn */
    if ((n - *n_system) % 2) return 0;
    if (k % 2 == 0) return rn == 4 && !memcmp(r, "user", 4);
    return rn == 9 && !memcmp(r, "assistant", 9);
}

/* -1 error, 0 not clean, 1 clean */
static int scan_tags(const char *s, Py_ssize_t n, Py_ssize_t counts[3]) {
    const char *end = s + n, *p = s;
    while ((p = memchr(p, '<', end - p)) != NULL) {
        Py_ssize_t left = end - p - 1;
        if (left >= 6) {
            if (!memcmp(p + 1, "image>", 6)) counts[0]++;
            else if (!memcmp(p + 1, "video>", 6)) counts[1]++;
            else if (!memcmp(p + 1, "audio>", 6)) counts[2]++;
            else if (!memcmp(p + 1, "think>", 6) || !memcmp(p + 1, "/think", 6)) return 0;
        }
        p++;
    }
    return 1;
}

/* -1 error, 0 not clean, 1 clean */
static int add_media(Buffer *b, PyObject *entries, Py_ssize_t count, PyObject *files_ok) {
    if (entries == Py_None) {
        if (count) return 0;
        return buf_put(b, "N", 1) ? -1 : 1;
    }
    if (!PyList_Check(entries) || PyList_GET_SIZE(entries) != count) return 0;
    if (buf_put(b, "L", 1) || buf_u32(b, count)) return -1;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *entry = PyList_GET_ITEM(entries, i);
        if (!PyUnicode_Check(entry)) return 0;
        int known = PySet_Contains(files_ok, entry);
        if (known <= 0) return known;
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(entry, &n);
        if (!s) { PyErr_Clear(); return 0; }
        if (buf_str(b, s, n)) return -1;
    }
    return 1;
}

/* The summary tuple, Py_None (not clean), or NULL with an exception set. */
static PyObject *row_summary(PyObject *messages, PyObject *const *media, PyObject *files_ok, PyObject *hash128) {
    PyObject *seq = PySequence_Fast(messages, "messages must be a sequence");
    if (!seq) return NULL;
    Py_ssize_t n_msgs = PySequence_Fast_GET_SIZE(seq);
    PyObject **msgs = PySequence_Fast_ITEMS(seq);
    Buffer b = {NULL, 0, 0};
    Py_ssize_t counts[3] = {0, 0, 0}, n_system = 0;
    int clean = n_msgs > 0;
    PyObject *result = NULL;
    if (clean && buf_put(&b, "P", 1)) goto done;
    for (Py_ssize_t i = 0; clean && i < n_msgs; i++) {
        PyObject *role = PyObject_GetAttr(msgs[i], str_role);
        if (!role) goto done;
        PyObject *content = PyObject_GetAttr(msgs[i], str_content);
        if (!content) { Py_DECREF(role); goto done; }
        Py_ssize_t rn, cn;
        const char *r = PyUnicode_Check(role) ? PyUnicode_AsUTF8AndSize(role, &rn) : NULL;
        const char *c = r && PyUnicode_Check(content) ? PyUnicode_AsUTF8AndSize(content, &cn) : NULL;
        if (!c) {  /* not strings, or lone surrogates: the full check decides */
            PyErr_Clear();
            clean = 0;
        } else if (!role_in_order(r, rn, i, n_msgs, &n_system)) {
            clean = 0;
        } else if (i == n_msgs - 1 && cn == 0) {
            clean = 0;
        } else {
            int tags = scan_tags(c, cn, counts);
            if (tags == 0) clean = 0;
            else if (buf_str(&b, r, rn) || buf_str(&b, c, cn)) { Py_DECREF(role); Py_DECREF(content); goto done; }
        }
        Py_DECREF(role);
        Py_DECREF(content);
    }
    for (int k = 0; clean && k < 3; k++) {
        int ok = add_media(&b, media[k], counts[k], files_ok);
        if (ok < 0) goto done;
        clean = ok;
    }
    if (!clean) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    /* hashed in place through a memoryview: no second copy of the row (a 200 MB line stays one copy) */
    PyObject *preimage = PyMemoryView_FromMemory(b.buf, b.len, PyBUF_READ);
    if (!preimage) goto done;
    PyObject *digest = PyObject_CallOneArg(hash128, preimage);
    Py_DECREF(preimage);
    if (!digest) goto done;
    result = Py_BuildValue("(nnnnN)", counts[0], counts[1], counts[2], n_system, digest);
done:
    PyMem_Free(b.buf);
    Py_DECREF(seq);
    return result;
}

static int check_set(PyObject *files_ok) {
    if (PySet_Check(files_ok) || PyFrozenSet_Check(files_ok)) return 0;
    PyErr_SetString(PyExc_TypeError, "files_ok must be a set");
    return -1;
}

static PyObject *summary(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "summary(messages, images, videos, audios, files_ok, hash128)");
        return NULL;
    }
    if (check_set(args[4])) return NULL;
    return row_summary(args[0], args + 1, args[4], args[5]);
}


typedef struct {
    PyObject *decode, *skip, *files_ok, *hash128, *digest_lines, *digests;
    int stop[3];
    Py_ssize_t sums[6];  /* rows, images, videos, audios, system turns, messages */
} Run;

/* Decode one line and take it if it is a clean row: -1 error, 0 stop here (the caller checks it), 1 taken. */
static int take_row(Run *run, PyObject *line_obj, Py_ssize_t line_no) {
    PyObject *row = PyObject_CallOneArg(run->decode, line_obj);
    if (!row) {
        if (PyErr_ExceptionMatches(run->skip)) { PyErr_Clear(); return 0; }
        return -1;
    }
    PyObject *messages = PyObject_GetAttr(row, str_messages);
    PyObject *media[3] = {NULL, NULL, NULL};
    PyObject *result = NULL;
    if (messages) {
        int k = 0;
        for (; k < 3; k++) if (!(media[k] = PyObject_GetAttr(row, str_media[k]))) break;
        int stopped = 0;
        for (int m = 0; k == 3 && m < 3; m++) stopped |= run->stop[m] && media[m] != Py_None;
        if (k == 3) result = stopped ? Py_NewRef(Py_None) : row_summary(messages, media, run->files_ok, run->hash128);
    }
    Py_ssize_t n_msgs = messages ? PyObject_Length(messages) : -1;
    Py_XDECREF(messages);
    for (int k = 0; k < 3; k++) Py_XDECREF(media[k]);
    Py_DECREF(row);
    if (!result) return -1;
    if (result == Py_None) { Py_DECREF(result); return 0; }
    PyObject *line = PyLong_FromSsize_t(line_no);
    int bad = !line || PyList_Append(run->digest_lines, line) || PyList_Append(run->digests, PyTuple_GET_ITEM(result, 4));
    Py_XDECREF(line);
    if (!bad) {
        run->sums[0] += 1;
        for (int k = 0; k < 4; k++) run->sums[1 + k] += PyLong_AsSsize_t(PyTuple_GET_ITEM(result, k));
        run->sums[5] += n_msgs;
    }
    Py_DECREF(result);
    return bad ? -1 : 1;
}

/* 1 when s[0:n] is valid UTF-8 as Python's decoder reads it (no overlong forms, surrogates or code points
 * past U+10FFFF). msgspec's typed decode skips unknown keys and values without validating them, so a line
 * with invalid UTF-8 there would otherwise pass as clean; the full check reports it (E003). ASCII runs are
 * checked 8 bytes at a time. */
static int valid_utf8(const unsigned char *s, Py_ssize_t n) {
    Py_ssize_t i = 0;
    while (i < n) {
        while (i + 8 <= n) {
            uint64_t v;
            memcpy(&v, s + i, 8);
            if (v & 0x8080808080808080ULL) break;
            i += 8;
        }
        if (i >= n) break;
        unsigned char c = s[i];
        if (c < 0x80) { i++; continue; }
        int len;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
        else return 0;
        if (i + len > n) return 0;
        for (int k = 1; k < len; k++) {
            unsigned char d = s[i + k];
            if ((d & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (d & 0x3F);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
        i += len;
    }
    return 1;
}

static int run_start(Run *run, PyObject *const *args, PyObject *totals) {
    run->decode = args[0]; run->skip = args[1]; run->files_ok = args[2]; run->hash128 = args[3];
    run->digest_lines = args[5]; run->digests = args[6];
    if (!PyList_Check(totals) || PyList_GET_SIZE(totals) != 6 || !PyList_Check(run->digest_lines) ||
        !PyList_Check(run->digests) || check_set(run->files_ok) || !PyTuple_Check(args[7]) ||
        PyTuple_GET_SIZE(args[7]) != 3) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "bad argument types");
        return -1;
    }
    for (int k = 0; k < 3; k++) run->stop[k] = PyObject_IsTrue(PyTuple_GET_ITEM(args[7], k)) == 1;
    for (int k = 0; k < 6; k++) run->sums[k] = 0;
    return 0;
}

static int run_finish(Run *run, PyObject *totals) {
    for (int k = 0; k < 6; k++) {
        PyObject *add = PyLong_FromSsize_t(run->sums[k]);
        PyObject *now = add ? PyNumber_Add(PyList_GET_ITEM(totals, k), add) : NULL;
        Py_XDECREF(add);
        if (!now) return -1;
        PyList_SetItem(totals, k, now);  /* steals `now`, drops the old value */
    }
    return 0;
}

/* check_buffer(decode, skip, files_ok, hash128, totals, digest_lines, digests, stop, buf, pos, end, line_no,
 *              max_line) -> (pos, line_end, line_no)
 *
 * The typed path's loop over the lines of buf[pos:end] (a file mapped in memory, or bytes), in C and
 * without copying a line: each line is decoded through a memoryview, summarised as above, and for a clean
 * row its line number and digest are appended and `totals` (a list: rows, images, videos, audios, system
 * turns, messages) is advanced. It stops at a line longer than max_line, one whose decode raises one of
 * `skip`, one that is not clean, or one with a media column whose flag in `stop` (images, videos,
 * audios) is true, and returns where that line starts and ends and its number, for the caller to check
 * it in Python; (end or past it, ..., the next line number) when it ran to the end. */
static PyObject *check_buffer(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 13) {
        PyErr_SetString(PyExc_TypeError, "check_buffer(decode, skip, files_ok, hash128, totals, digest_lines, "
                        "digests, stop, buf, pos, end, line_no, max_line)");
        return NULL;
    }
    Run run;
    PyObject *totals = args[4];
    if (run_start(&run, args, totals)) return NULL;
    Py_ssize_t pos = PyLong_AsSsize_t(args[9]), end = PyLong_AsSsize_t(args[10]);
    Py_ssize_t line_no = PyLong_AsSsize_t(args[11]), max_line = PyLong_AsSsize_t(args[12]);
    if (PyErr_Occurred()) return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[8], &view, PyBUF_SIMPLE)) return NULL;
    if (end > view.len) end = view.len;
    const char *base = view.buf;
    Py_ssize_t line_end = pos;
    int status = 1;
    while (pos < end) {
        const char *nl = memchr(base + pos, '\n', end - pos);
        line_end = nl ? nl - base : end;
        if (line_end - pos > max_line) { status = 0; break; }
        if (!valid_utf8((const unsigned char *)base + pos, line_end - pos)) { status = 0; break; }
        PyObject *mv = PyMemoryView_FromMemory((char *)base + pos, line_end - pos, PyBUF_READ);
        if (!mv) { status = -1; break; }
        status = take_row(&run, mv, line_no);
        Py_DECREF(mv);
        if (status <= 0) break;
        pos = line_end + 1;
        line_no++;
    }
    PyBuffer_Release(&view);
    if (status < 0 || run_finish(&run, totals)) return NULL;
    if (status == 1) line_end = pos;
    return Py_BuildValue("(nnn)", pos, line_end, line_no);
}

static PyMethodDef methods[] = {
    {"summary", (PyCFunction)(void (*)(void))summary, METH_FASTCALL, "tag counts and digest of a clean row, or None"},
    {"check_buffer", (PyCFunction)(void (*)(void))check_buffer, METH_FASTCALL, "clean rows of a buffer, in C"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_rowcheck", NULL, -1, methods};

PyMODINIT_FUNC PyInit__rowcheck(void) {
    str_role = PyUnicode_InternFromString("role");
    str_content = PyUnicode_InternFromString("content");
    str_messages = PyUnicode_InternFromString("messages");
    str_media[0] = PyUnicode_InternFromString("images");
    str_media[1] = PyUnicode_InternFromString("videos");
    str_media[2] = PyUnicode_InternFromString("audios");
    if (!str_role || !str_content || !str_messages || !str_media[0] || !str_media[1] || !str_media[2]) return NULL;
    return PyModule_Create(&module);
}
