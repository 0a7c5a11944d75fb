#ifndef SHIPPY_CMONGOC_H
#define SHIPPY_CMONGOC_H
#include <mongoc/mongoc.h>

// bson_iter_t is declared 128-byte aligned, so Swift imports it as an opaque type and cannot size it.
static inline size_t shippy_bson_iter_size(void) { return sizeof(bson_iter_t); }
static inline size_t shippy_bson_iter_alignment(void) { return _Alignof(bson_iter_t); }
// bson_t likewise: replies that libmongoc initialises itself need storage of this size.
static inline size_t shippy_bson_size(void) { return sizeof(bson_t); }
static inline size_t shippy_bson_alignment(void) { return _Alignof(bson_t); }
#endif
