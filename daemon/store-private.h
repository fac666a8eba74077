/*
 * store-private.h - what store.c shares with store-load.c.
 */
#ifndef DAGD_STORE_PRIVATE_H
#define DAGD_STORE_PRIVATE_H

#include <sqlite3.h>

sqlite3 *store_sqlite(void);
/* a bound write statement, run within the batch's transaction */
int store_step(sqlite3_stmt *st);
void store_map_close(void);     /* store-map.c */

#endif
