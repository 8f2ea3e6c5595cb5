/* json_keys.c — see json_keys.h. */
#include "io/json_keys.h"

#include <math.h>

#include "edgeprune/core.h"

static int line_of(const char *text, size_t len, const char *pos) {
  int line = 1;
  for (const char *p = text; p < pos && p < text + len; p++)
    line += *p == '\n';
  return line;
}

cJSON *jk_parse(const char *text, size_t len, const char *path) {
  cJSON *root = cJSON_ParseWithLength(text, len);
  if (!root) {
    const char *at = cJSON_GetErrorPtr();
    ep_fatal("%s:%d: malformed JSON", path, at ? line_of(text, len, at) : 0);
  }
  if (!cJSON_IsObject(root)) ep_fatal("%s: expected a JSON object at the top level", path);
  return root;
}

const cJSON *jk_get(const cJSON *obj, const char *key) {
  const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
  return (j && !cJSON_IsNull(j)) ? j : NULL;
}

int jk_req_int(const cJSON *obj, const char *key, int min, const char *path) {
  const cJSON *j = jk_get(obj, key);
  if (!j) ep_fatal("%s: key '%s' is missing (expected an integer >= %d)", path, key, min);
  if (!cJSON_IsNumber(j) || floor(j->valuedouble) != j->valuedouble || j->valuedouble < min ||
      j->valuedouble > 2147483647.0)
    ep_fatal("%s: key '%s' should be an integer >= %d", path, key, min);
  return (int)j->valuedouble;
}

int jk_opt_int(const cJSON *obj, const char *key, int min, int def, const char *path) {
  return jk_get(obj, key) ? jk_req_int(obj, key, min, path) : def;
}

double jk_opt_num(const cJSON *obj, const char *key, double def, const char *path) {
  const cJSON *j = jk_get(obj, key);
  if (!j) return def;
  if (!cJSON_IsNumber(j)) ep_fatal("%s: key '%s' should be a number", path, key);
  return j->valuedouble;
}

int jk_req_bool(const cJSON *obj, const char *key, const char *path) {
  const cJSON *j = jk_get(obj, key);
  if (!j) ep_fatal("%s: key '%s' is missing (expected true or false)", path, key);
  if (!cJSON_IsBool(j)) ep_fatal("%s: key '%s' should be true or false", path, key);
  return cJSON_IsTrue(j);
}

int jk_opt_bool(const cJSON *obj, const char *key, int def, const char *path) {
  return jk_get(obj, key) ? jk_req_bool(obj, key, path) : def;
}

const char *jk_req_str(const cJSON *obj, const char *key, const char *path) {
  const cJSON *j = jk_get(obj, key);
  if (!j) ep_fatal("%s: key '%s' is missing (expected a string)", path, key);
  if (!cJSON_IsString(j)) ep_fatal("%s: key '%s' should be a string", path, key);
  return j->valuestring;
}

const char *jk_opt_str(const cJSON *obj, const char *key, const char *def, const char *path) {
  return jk_get(obj, key) ? jk_req_str(obj, key, path) : def;
}

const cJSON *jk_req_obj(const cJSON *obj, const char *key, const char *path) {
  const cJSON *j = jk_get(obj, key);
  if (!j) ep_fatal("%s: key '%s' is missing (expected an object)", path, key);
  if (!cJSON_IsObject(j)) ep_fatal("%s: key '%s' should be a JSON object", path, key);
  return j;
}
