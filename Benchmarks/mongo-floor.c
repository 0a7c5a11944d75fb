// The MongoDB driver's own floor (make bench): FindAvailable's query, sent through libmongoc alone, as
// vessel-service sends it (a client from a pool, find with the same filter and options, the cursor read).
// Prints one JSON object: the process's CPU and the wall time per query. Build with
//   cc mongo-floor.c $(pkg-config --cflags --libs libmongoc-1.0) -o mongo-floor
// Usage: mongo-floor URL DATABASE CALLS
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static double cpu_seconds(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

static double wall_seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec + now.tv_nsec / 1e9;
}

// One FindAvailable query for 1 container of 1 kg; returns 0 when it failed.
static int find_available(mongoc_client_pool_t *pool, const char *database) {
    mongoc_client_t *client = mongoc_client_pool_pop(pool);
    mongoc_collection_t *vessels = mongoc_client_get_collection(client, database, "vessels");
    bson_t *filter = BCON_NEW("available", BCON_BOOL(true), "room_capacity", "{", "$gte", BCON_INT32(1), "}",
                              "room_weight", "{", "$gte", BCON_INT32(1), "}");
    // The options ShippyMongo's find sends: its time limit, the whole answer in one batch, the cursor closed.
    bson_t *options = BCON_NEW("maxTimeMS", BCON_INT64(5000), "sort", "{", "capacity", BCON_INT32(1), "max_weight",
                               BCON_INT32(1), "_id", BCON_INT32(1), "}", "projection", "{", "holds", BCON_INT32(0),
                               "}", "limit", BCON_INT64(1), "batchSize", BCON_INT64(1), "singleBatch",
                               BCON_BOOL(true));
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(vessels, filter, options, NULL);
    const bson_t *document;
    while (mongoc_cursor_next(cursor, &document)) {
    }
    bson_error_t error;
    int ok = !mongoc_cursor_error(cursor, &error);
    if (!ok) fprintf(stderr, "mongo-floor: %s\n", error.message);
    mongoc_cursor_destroy(cursor);
    bson_destroy(options);
    bson_destroy(filter);
    mongoc_collection_destroy(vessels);
    mongoc_client_pool_push(pool, client);
    return ok;
}

int main(int argc, char **argv) {
    if (argc != 4 || atoi(argv[3]) <= 0) {
        fprintf(stderr, "usage: %s URL DATABASE CALLS\n", argv[0]);
        return 64;
    }
    const char *database = argv[2];
    int calls = atoi(argv[3]);
    mongoc_init();
    bson_error_t error;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(argv[1], &error);
    if (!uri) {
        fprintf(stderr, "mongo-floor: %s\n", error.message);
        return 1;
    }
    mongoc_client_pool_t *pool = mongoc_client_pool_new(uri);
    // Connections and the server's plan cache warmed first, as in a service that has been running.
    for (int i = 0; i < 100; i++) {
        if (!find_available(pool, database)) return 1;
    }
    double cpu = cpu_seconds(), wall = wall_seconds();
    for (int i = 0; i < calls; i++) {
        if (!find_available(pool, database)) return 1;
    }
    cpu = cpu_seconds() - cpu;
    wall = wall_seconds() - wall;
    printf("{\"calls\": %d, \"cpuMicrosecondsPerCall\": %.2f, \"wallMicrosecondsPerCall\": %.2f}\n", calls,
           1e6 * cpu / calls, 1e6 * wall / calls);
    mongoc_client_pool_destroy(pool);
    mongoc_uri_destroy(uri);
    mongoc_cleanup();
    return 0;
}
