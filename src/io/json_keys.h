/* json_keys.h — typed look-ups in a parsed JSON config (cJSON), each a fatal error
 * naming the file and the key when the key is missing or of the wrong type. JSON null
 * counts as absent. Internal to src/io. */
#pragma once

#include <cjson/cJSON.h>
#include <stddef.h>

/* Parse a whole JSON text; malformed JSON is a fatal error naming path and line. */
cJSON *jk_parse(const char *text, size_t len, const char *path);

/* The item for key, or NULL when absent or null. */
const cJSON *jk_get(const cJSON *obj, const char *key);

int jk_req_int(const cJSON *obj, const char *key, int min, const char *path);
int jk_opt_int(const cJSON *obj, const char *key, int min, int def, const char *path);
double jk_opt_num(const cJSON *obj, const char *key, double def, const char *path);
int jk_req_bool(const cJSON *obj, const char *key, const char *path);
int jk_opt_bool(const cJSON *obj, const char *key, int def, const char *path);
const char *jk_req_str(const cJSON *obj, const char *key, const char *path);
const char *jk_opt_str(const cJSON *obj, const char *key, const char *def, const char *path);
const cJSON *jk_req_obj(const cJSON *obj, const char *key, const char *path);
