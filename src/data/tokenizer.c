/* tokenizer.c — GPT-2 byte-level BPE, matching the reference GPT2Tokenizer id for id.
 *
 * Encoding: split the text around literal "<|endoftext|>" (an added special token, so
 * it is never seen by BPE), cut each remaining piece with the GPT-2 pre-tokenisation
 * pattern
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * (hand-written below, Unicode classes from unicode_tables.h), then run BPE on the
 * bytes of each piece: repeatedly merge every occurrence of the adjacent pair with the
 * lowest merge rank until no pair has a rank.
 *
 * Tokens are held as raw bytes: vocab.json spells each byte as a printable code point
 * (the bytes-to-unicode map), which is undone at load time. Every merge of the GPT-2
 * files joins two vocabulary tokens into a third, so merges are keyed on id pairs. */
#include "edgeprune/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "data/unicode_tables.h"
#include "edgeprune/core.h"

#define EOT_TEXT "<|endoftext|>"

typedef struct {
  uint64_t key; /* (left id << 32) | right id */
  int32_t rank;
  int32_t merged;
  int used;
} merge_slot;

struct ep_tokenizer {
  int n_vocab;
  char *bytes;       /* all token byte strings, back to back */
  size_t *offset;    /* [n_vocab + 1] token i is bytes[offset[i], offset[i+1]) */
  int32_t *vslot;    /* open-addressing table of ids keyed by token bytes, -1 empty */
  size_t vslot_cap;  /* power of two */
  merge_slot *mslot; /* open-addressing table of merges keyed by id pair */
  size_t mslot_cap;  /* power of two */
  int n_merges;
  int32_t byte_id[256]; /* id of each single-byte token */
  int eot_id;           /* id of "<|endoftext|>", -1 when the vocabulary lacks it */
};

/* ---- bytes-to-unicode ---------------------------------------------------------------- */

/* GPT-2's map from bytes to printable code points: printable Latin-1 bytes map to
 * themselves, the other 68 bytes to 256, 257, ... in byte order. */
static void byte_map_build(int byte_to_cp[256], int cp_to_byte[512]) {
  for (int i = 0; i < 512; i++)
    cp_to_byte[i] = -1;
  int extra = 0;
  for (int b = 0; b < 256; b++) {
    int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    byte_to_cp[b] = printable ? b : 256 + extra++;
    cp_to_byte[byte_to_cp[b]] = b;
  }
}

/* ---- UTF-8 and character classes -------------------------------------------------------- */

/* Decode one code point at s[i] (n bytes in all); *len gets its byte length. An invalid
 * or truncated sequence decodes as one byte with code point -1 (class "other"). */
static int32_t utf8_next(const unsigned char *s, size_t n, size_t i, int *len) {
  unsigned c = s[i];
  int need;
  uint32_t cp;
  if (c < 0x80) {
    *len = 1;
    return (int32_t)c;
  } else if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    cp = c & 0x07;
  } else {
    *len = 1;
    return -1;
  }
  if (i + (size_t)need >= n) {
    *len = 1;
    return -1;
  }
  for (int k = 1; k <= need; k++) {
    unsigned cc = s[i + (size_t)k];
    if ((cc & 0xC0) != 0x80) {
      *len = 1;
      return -1;
    }
    cp = (cp << 6) | (cc & 0x3F);
  }
  /* reject overlong forms, surrogates and values past U+10FFFF */
  if ((need == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
      (need == 3 && (cp < 0x10000 || cp > 0x10FFFF))) {
    *len = 1;
    return -1;
  }
  *len = need + 1;
  return (int32_t)cp;
}

enum { CH_OTHER = 0, CH_LETTER = EP_UCLASS_LETTER, CH_NUMBER = EP_UCLASS_NUMBER, CH_SPACE = 3 };

/* \s of the reference regex engine: the Unicode White_Space property. */
static int is_white_space(int32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

static int char_class(int32_t cp) {
  if (cp < 0) return CH_OTHER;
  if (cp < 0x80) {
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return CH_LETTER;
    if (cp >= '0' && cp <= '9') return CH_NUMBER;
    return is_white_space(cp) ? CH_SPACE : CH_OTHER;
  }
  if (is_white_space(cp)) return CH_SPACE;
  size_t lo = 0, hi = EP_N_URANGES;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if ((uint32_t)cp < ep_uranges[mid].first)
      hi = mid;
    else if ((uint32_t)cp > ep_uranges[mid].last)
      lo = mid + 1;
    else
      return ep_uranges[mid].cls;
  }
  return CH_OTHER;
}

/* ---- hash tables ------------------------------------------------------------------------ */

static uint64_t hash_bytes(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= 1099511628211ull;
  }
  return h;
}

static uint64_t hash_u64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

static int vocab_find(const ep_tokenizer *t, const char *s, size_t n) {
  size_t mask = t->vslot_cap - 1;
  for (size_t h = hash_bytes(s, n) & mask;; h = (h + 1) & mask) {
    int32_t id = t->vslot[h];
    if (id < 0) return -1;
    size_t len = t->offset[id + 1] - t->offset[id];
    if (len == n && memcmp(t->bytes + t->offset[id], s, n) == 0) return id;
  }
}

static const merge_slot *merge_find(const ep_tokenizer *t, int32_t a, int32_t b) {
  uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
  size_t mask = t->mslot_cap - 1;
  for (size_t h = hash_u64(key) & mask;; h = (h + 1) & mask) {
    const merge_slot *m = &t->mslot[h];
    if (!m->used) return NULL;
    if (m->key == key) return m;
  }
}

/* ---- loading ---------------------------------------------------------------------------- */

/* Turn a vocab.json / merges.txt token spelling (UTF-8 of byte-map code points) into
 * raw bytes appended at out; returns the byte count or -1 when a code point is not
 * in the map. */
static long spelling_to_bytes(const char *s, size_t n, const int cp_to_byte[512], char *out) {
  long k = 0;
  for (size_t i = 0; i < n;) {
    int len;
    int32_t cp = utf8_next((const unsigned char *)s, n, i, &len);
    if (cp < 0 || cp >= 512 || cp_to_byte[cp] < 0) return -1;
    out[k++] = (char)cp_to_byte[cp];
    i += (size_t)len;
  }
  return k;
}

static void load_vocab(ep_tokenizer *t, const char *path, const int cp_to_byte[512]) {
  size_t len;
  char *text = ep_read_file(path, &len);
  cJSON *root = cJSON_ParseWithLength(text, len);
  if (!root) {
    /* cJSON reports where parsing stopped; turn that into a line number */
    const char *at = cJSON_GetErrorPtr();
    long line = 1;
    if (at && at >= text && at <= text + len)
      for (const char *p = text; p < at; p++)
        line += *p == '\n';
    ep_fatal("%s:%ld: not valid JSON", path, line);
  }
  if (!cJSON_IsObject(root)) ep_fatal("%s: expected a JSON object of token -> id", path);
  int n = cJSON_GetArraySize(root);
  if (n <= 0) ep_fatal("%s: empty vocabulary", path);
  t->n_vocab = n;
  t->offset = ep_calloc((size_t)n + 1, sizeof *t->offset);
  size_t total = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, root) total += strlen(e->string);
  t->bytes = ep_malloc(total + 1);
  /* first pass: place each token by id */
  size_t *start = ep_malloc((size_t)n * sizeof *start);
  long *blen = ep_malloc((size_t)n * sizeof *blen);
  for (int i = 0; i < n; i++)
    blen[i] = -1;
  char *scratch = ep_malloc(total + 1);
  size_t pos = 0;
  cJSON_ArrayForEach(e, root) {
    if (!cJSON_IsNumber(e) || e->valuedouble != (double)(int)e->valuedouble)
      ep_fatal("%s: token \"%s\": id is not an integer", path, e->string);
    int id = (int)e->valuedouble;
    if (id < 0 || id >= n)
      ep_fatal("%s: token \"%s\": id %d outside [0, %d) (ids must be dense)", path, e->string, id, n);
    if (blen[id] >= 0) ep_fatal("%s: token \"%s\": id %d used twice", path, e->string, id);
    long k = spelling_to_bytes(e->string, strlen(e->string), cp_to_byte, scratch + pos);
    if (k < 0) {
      /* Not a byte-level spelling (e.g. an added special token): keep its UTF-8 bytes. */
      k = (long)strlen(e->string);
      memcpy(scratch + pos, e->string, (size_t)k);
    }
    start[id] = pos;
    blen[id] = k;
    pos += (size_t)k;
  }
  /* second pass: lay tokens out in id order so offset[] is monotone */
  size_t o = 0;
  for (int id = 0; id < n; id++) {
    t->offset[id] = o;
    memcpy(t->bytes + o, scratch + start[id], (size_t)blen[id]);
    o += (size_t)blen[id];
  }
  t->offset[n] = o;
  free(scratch);
  free(start);
  free(blen);
  cJSON_Delete(root);
  free(text);

  t->vslot_cap = 1;
  while (t->vslot_cap < (size_t)n * 2)
    t->vslot_cap <<= 1;
  t->vslot = ep_malloc(t->vslot_cap * sizeof *t->vslot);
  for (size_t i = 0; i < t->vslot_cap; i++)
    t->vslot[i] = -1;
  size_t mask = t->vslot_cap - 1;
  for (int id = 0; id < n; id++) {
    const char *s = t->bytes + t->offset[id];
    size_t sl = t->offset[id + 1] - t->offset[id];
    if (vocab_find(t, s, sl) >= 0)
      ep_fatal("%s: two tokens spell the same bytes (ids %d and %d)", path, vocab_find(t, s, sl), id);
    size_t h = hash_bytes(s, sl) & mask;
    while (t->vslot[h] >= 0)
      h = (h + 1) & mask;
    t->vslot[h] = id;
  }
}

static void load_merges(ep_tokenizer *t, const char *path, const int cp_to_byte[512]) {
  size_t len;
  char *text = ep_read_file(path, &len);
  size_t n_lines = 1;
  for (size_t i = 0; i < len; i++)
    n_lines += text[i] == '\n';
  t->mslot_cap = 1;
  while (t->mslot_cap < n_lines * 2)
    t->mslot_cap <<= 1;
  t->mslot = ep_calloc(t->mslot_cap, sizeof *t->mslot);
  size_t mask = t->mslot_cap - 1;
  char *buf = ep_malloc(len + 1);
  long line_no = 0;
  int rank = 0;
  for (char *line = text; line < text + len;) {
    char *nl = memchr(line, '\n', (size_t)(text + len - line));
    char *end = nl ? nl : text + len;
    line_no++;
    size_t ll = (size_t)(end - line);
    if (ll > 0 && line[ll - 1] == '\r') ll--;
    /* the first line is the "#version" header; blank lines carry no merge */
    if (ll > 0 && !(line_no == 1 && line[0] == '#')) {
      char *sp = memchr(line, ' ', ll);
      if (!sp || sp == line || sp == line + ll - 1 || memchr(sp + 1, ' ', (size_t)(line + ll - sp - 1)))
        ep_fatal("%s:%ld: expected two tokens separated by one space", path, line_no);
      long ka = spelling_to_bytes(line, (size_t)(sp - line), cp_to_byte, buf);
      long kb = ka < 0 ? -1 : spelling_to_bytes(sp + 1, (size_t)(line + ll - sp - 1), cp_to_byte, buf + ka);
      if (ka < 0 || kb < 0) ep_fatal("%s:%ld: character outside the GPT-2 byte map", path, line_no);
      int a = vocab_find(t, buf, (size_t)ka);
      int b = vocab_find(t, buf + ka, (size_t)kb);
      int m = vocab_find(t, buf, (size_t)(ka + kb));
      if (a < 0 || b < 0 || m < 0)
        ep_fatal("%s:%ld: merge '%.*s' uses or makes a token missing from vocab.json", path, line_no, (int)ll,
                 line);
      uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
      size_t h = hash_u64(key) & mask;
      while (t->mslot[h].used && t->mslot[h].key != key)
        h = (h + 1) & mask;
      /* a repeated pair takes the later rank, as a Python dict built from the list does */
      t->mslot[h].used = 1;
      t->mslot[h].key = key;
      t->mslot[h].rank = rank++;
      t->mslot[h].merged = m;
    }
    line = nl ? nl + 1 : text + len;
  }
  t->n_merges = rank;
  free(buf);
  free(text);
}

ep_tokenizer *tokenizer_load(const char *dir) {
  int byte_to_cp[256], cp_to_byte[512];
  byte_map_build(byte_to_cp, cp_to_byte);
  ep_tokenizer *t = ep_calloc(1, sizeof *t);
  char *vpath = ep_path_join(dir, "vocab.json");
  char *mpath = ep_path_join(dir, "merges.txt");
  load_vocab(t, vpath, cp_to_byte);
  for (int b = 0; b < 256; b++) {
    char c = (char)b;
    t->byte_id[b] = vocab_find(t, &c, 1);
    if (t->byte_id[b] < 0) ep_fatal("%s: no token for byte 0x%02X", vpath, b);
  }
  t->eot_id = vocab_find(t, EOT_TEXT, strlen(EOT_TEXT));
  load_merges(t, mpath, cp_to_byte);
  free(vpath);
  free(mpath);
  return t;
}

void tokenizer_free(ep_tokenizer *t) {
  if (!t) return;
  free(t->bytes);
  free(t->offset);
  free(t->vslot);
  free(t->mslot);
  free(t);
}

int tokenizer_vocab_size(const ep_tokenizer *t) {
  return t->n_vocab;
}

int tokenizer_eot_id(const ep_tokenizer *t) {
  return t->eot_id;
}

int tokenizer_token_id(const ep_tokenizer *t, const char *token) {
  int byte_to_cp[256], cp_to_byte[512];
  byte_map_build(byte_to_cp, cp_to_byte);
  size_t n = strlen(token);
  char *buf = ep_malloc(n + 1);
  long k = spelling_to_bytes(token, n, cp_to_byte, buf);
  int id = k >= 0 ? vocab_find(t, buf, (size_t)k) : -1;
  if (id < 0) id = vocab_find(t, token, n); /* special tokens keep their own spelling */
  free(buf);
  return id;
}

const char *tokenizer_token_bytes(const ep_tokenizer *t, int id, size_t *len) {
  EP_CHECK(id >= 0 && id < t->n_vocab, "token id %d outside the vocabulary [0, %d)", id, t->n_vocab);
  *len = t->offset[id + 1] - t->offset[id];
  return t->bytes + t->offset[id];
}

/* ---- encoding ----------------------------------------------------------------------------- */

typedef struct {
  int32_t *ids;
  size_t n, cap;
} id_buf;

static void id_push(id_buf *b, int32_t id) {
  if (b->n == b->cap) {
    b->cap = b->cap ? 2 * b->cap : 64;
    b->ids = ep_realloc(b->ids, b->cap * sizeof *b->ids);
  }
  b->ids[b->n++] = id;
}

/* BPE on the bytes of one pre-token. */
static void bpe_word(const ep_tokenizer *t, const unsigned char *s, size_t n, id_buf *out) {
  int32_t stack_buf[64];
  int32_t *w = n <= 64 ? stack_buf : ep_malloc(n * sizeof *w);
  size_t len = n;
  for (size_t i = 0; i < n; i++)
    w[i] = t->byte_id[s[i]];
  while (len > 1) {
    int32_t best_rank = INT32_MAX;
    int32_t ba = -1, bb = -1, bm = -1;
    for (size_t i = 0; i + 1 < len; i++) {
      const merge_slot *m = merge_find(t, w[i], w[i + 1]);
      if (m && m->rank < best_rank) {
        best_rank = m->rank;
        ba = w[i];
        bb = w[i + 1];
        bm = m->merged;
      }
    }
    if (bm < 0) break;
    /* merge every non-overlapping occurrence, left to right */
    size_t k = 0;
    for (size_t i = 0; i < len;) {
      if (i + 1 < len && w[i] == ba && w[i + 1] == bb) {
        w[k++] = bm;
        i += 2;
      } else {
        w[k++] = w[i++];
      }
    }
    len = k;
  }
  for (size_t i = 0; i < len; i++)
    id_push(out, w[i]);
  if (w != stack_buf) free(w);
}

/* Length in bytes of the pre-token starting at s[i] (i < n). */
static size_t pretoken_len(const unsigned char *s, size_t n, size_t i) {
  int l0;
  int32_t c0 = utf8_next(s, n, i, &l0);
  /* 's 't 're 've 'm 'll 'd (case-sensitive) */
  if (c0 == '\'' && i + 1 < n) {
    unsigned char a = s[i + 1], b = i + 2 < n ? s[i + 2] : 0;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  }
  /* optional leading ' ' then a run of one class (letters, numbers, or other) */
  size_t j = i;
  int32_t c = c0;
  int lc = l0;
  if (c0 == ' ' && i + 1 < n) {
    int l1;
    int32_t c1 = utf8_next(s, n, i + 1, &l1);
    if (char_class(c1) != CH_SPACE) {
      j = i + 1;
      c = c1;
      lc = l1;
    }
  }
  int cls = char_class(c);
  if (cls != CH_SPACE) {
    size_t k = j + (size_t)lc;
    while (k < n) {
      int l;
      int32_t d = utf8_next(s, n, k, &l);
      if (char_class(d) != cls) break;
      k += (size_t)l;
    }
    return k - i;
  }
  /* whitespace run: \s+(?!\S) leaves the last space for the next token when a
   * non-space follows; a lone space before a non-space falls to \s+ */
  size_t k = i, last = i;
  int count = 0;
  while (k < n) {
    int l;
    int32_t d = utf8_next(s, n, k, &l);
    if (char_class(d) != CH_SPACE) break;
    last = k;
    k += (size_t)l;
    count++;
  }
  if (k < n && count >= 2) return last - i;
  return k - i;
}

static void encode_piece(const ep_tokenizer *t, const unsigned char *s, size_t n, id_buf *out) {
  for (size_t i = 0; i < n;) {
    size_t l = pretoken_len(s, n, i);
    bpe_word(t, s + i, l, out);
    i += l;
  }
}

size_t tokenizer_encode(const ep_tokenizer *t, const char *text, size_t len, int32_t **ids) {
  id_buf out = {0};
  const unsigned char *s = (const unsigned char *)text;
  const size_t eot_len = strlen(EOT_TEXT);
  size_t start = 0;
  for (size_t i = 0; i < len;) {
    if (t->eot_id >= 0 && s[i] == '<' && len - i >= eot_len && !memcmp(s + i, EOT_TEXT, eot_len)) {
      encode_piece(t, s + start, i - start, &out);
      id_push(&out, t->eot_id);
      i += eot_len;
      start = i;
    } else {
      i++;
    }
  }
  encode_piece(t, s + start, len - start, &out);
  if (!out.ids) out.ids = ep_malloc(sizeof *out.ids);
  *ids = out.ids;
  return out.n;
}

char *tokenizer_decode(const ep_tokenizer *t, const int32_t *ids, size_t n) {
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    EP_CHECK(ids[i] >= 0 && ids[i] < t->n_vocab, "token id %d outside the vocabulary [0, %d)", ids[i],
             t->n_vocab);
    total += t->offset[ids[i] + 1] - t->offset[ids[i]];
  }
  char *out = ep_malloc(total + 1);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    size_t l = t->offset[ids[i] + 1] - t->offset[ids[i]];
    memcpy(out + k, t->bytes + t->offset[ids[i]], l);
    k += l;
  }
  out[k] = '\0';
  return out;
}
