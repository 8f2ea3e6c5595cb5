/* tokenizer.h — GPT-2 byte-level BPE (vocab.json + merges.txt), encode and decode.
 * Produces exactly the ids of the reference GPT-2 tokenizer, including the special
 * token "<|endoftext|>" (50256), which is matched literally in the input text. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct ep_tokenizer ep_tokenizer;

/* Load DIR/vocab.json and DIR/merges.txt; fatal error naming the file and line on a
 * malformed file. */
ep_tokenizer *tokenizer_load(const char *dir);
void tokenizer_free(ep_tokenizer *t);

int tokenizer_vocab_size(const ep_tokenizer *t);
/* Id of a token string as written in vocab.json (e.g. "Ġthe"), or -1. */
int tokenizer_token_id(const ep_tokenizer *t, const char *token);

/* Id of "<|endoftext|>" (50256 for GPT-2), or -1 when the vocabulary lacks it. */
int tokenizer_eot_id(const ep_tokenizer *t);
/* The raw bytes of token id (not NUL-terminated); *len gets their count. */
const char *tokenizer_token_bytes(const ep_tokenizer *t, int id, size_t *len);

/* Encode len bytes of UTF-8 text; *ids is allocated (caller frees); returns the count. */
size_t tokenizer_encode(const ep_tokenizer *t, const char *text, size_t len, int32_t **ids);
/* Decode ids to UTF-8 text (NUL-terminated, caller frees). */
char *tokenizer_decode(const ep_tokenizer *t, const int32_t *ids, size_t n);
