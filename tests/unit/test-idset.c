/*
 * test-idset.c - the ordered id sets behind listings by status: whatever
 * order ids come and go in, the set walks them in order, each once, against
 * a plain array as the model; dense ids, sparse ones, and ids no daemon
 * hands out (negative, past 2^48); and what the set costs: a bit an id when
 * they are dense, no more than about 4 bytes an id when they are not.
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "idset.h"

#define N 5000

static unsigned rng = 12345;

static unsigned rnd(void)
{
	rng = rng * 1103515245 + 12345;
	return rng >> 8;
}

/* The set holds exactly the ids model marks, walked in order. */
static void same(const struct idset *s, const unsigned char *model)
{
	int64_t id = 0;
	size_t n = 0;

	for (int64_t i = 1; i < N; i++) {
		if (!model[i])
			continue;
		id = idset_next(s, id);
		assert_int_equal(id, i);
		/* and from anywhere below it */
		assert_int_equal(idset_next(s, i - 1), i);
		n++;
	}
	assert_int_equal(idset_next(s, id), 0);
	assert_int_equal(s->count, n);
}

static void appended_ids_walk_in_order(void **state)
{
	struct idset s = { 0 };
	static unsigned char model[N];

	memset(model, 0, sizeof(model));
	for (int64_t i = 1; i < N; i += 2) {
		idset_add(&s, i);
		model[i] = 1;
	}
	same(&s, model);
	idset_add(&s, 7);       /* already in: no change */
	same(&s, model);
	idset_free(&s);
	assert_int_equal(idset_next(&s, 0), 0);
}

static void random_adds_and_removes_match_the_model(void **state)
{
	struct idset s = { 0 };
	static unsigned char model[N];

	memset(model, 0, sizeof(model));
	for (int round = 0; round < 40000; round++) {
		int64_t id = 1 + rnd() % (N - 1);

		if (rnd() % 3) {
			idset_add(&s, id);
			model[id] = 1;
		} else {
			idset_del(&s, id);
			model[id] = 0;
		}
		if (round % 4000 == 0)
			same(&s, model);
	}
	same(&s, model);
	/* emptied, chunk by chunk */
	for (int64_t i = 1; i < N; i++) {
		idset_del(&s, i);
		model[i] = 0;
	}
	same(&s, model);
	assert_int_equal(s.n, 0);
	assert_int_equal(idset_bytes(&s), 0);   /* an emptied set holds nothing */
	idset_del(&s, 3);       /* not in: no change */
	idset_free(&s);
}

/* The model of the randomized tests: the ids in a sorted array, sorted[]. */
#define MODEL_MAX 40000
static int64_t sorted[MODEL_MAX];
static size_t n_sorted;

/* The first position whose id is >= id. */
static size_t sorted_pos(int64_t id)
{
	size_t lo = 0, hi = n_sorted;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (sorted[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void sorted_add(int64_t id)
{
	size_t i = sorted_pos(id);

	if (i < n_sorted && sorted[i] == id)
		return;
	assert_true(n_sorted < MODEL_MAX);
	memmove(sorted + i + 1, sorted + i, (n_sorted - i) * sizeof(*sorted));
	sorted[i] = id;
	n_sorted++;
}

static void sorted_del(int64_t id)
{
	size_t i = sorted_pos(id);

	if (i == n_sorted || sorted[i] != id)
		return;
	memmove(sorted + i, sorted + i + 1, (n_sorted - i - 1) * sizeof(*sorted));
	n_sorted--;
}

static int64_t sorted_next(int64_t after)
{
	size_t i = after == INT64_MAX ? n_sorted : sorted_pos(after + 1);

	return i < n_sorted ? sorted[i] : 0;
}

static int64_t rnd64(void)
{
	return (int64_t) ((uint64_t) rnd() << 40 ^ (uint64_t) rnd() << 20 ^ rnd());
}

/* The set answers as the model does: its count, the next id from each id
 * and from just below it, from 0, past the end and from anywhere; and it
 * holds no more than 4 bytes an id but for 64 bytes a container. */
static void like_model(const struct idset *s)
{
	assert_int_equal(s->count, n_sorted);
	for (size_t i = 0; i < n_sorted; i++) {
		if (sorted[i] != INT64_MIN)
			assert_int_equal(idset_next(s, sorted[i] - 1), sorted[i]);
		assert_int_equal(idset_next(s, sorted[i]), i + 1 < n_sorted ? sorted[i + 1] : 0);
	}
	assert_int_equal(idset_next(s, 0), sorted_next(0));
	assert_int_equal(idset_next(s, INT64_MAX), 0);
	assert_int_equal(idset_next(s, INT64_MIN), sorted_next(INT64_MIN));
	if (n_sorted > 0)
		assert_int_equal(idset_next(s, sorted[n_sorted - 1]), 0);
	for (int k = 0; k < 1000; k++) {
		/* near an id (wrapping past the ends), or anywhere */
		int64_t after = n_sorted && k % 2 ? (int64_t) ((uint64_t) sorted[rnd() % n_sorted] + rnd() % 129 - 64)
		                                 : rnd64();

		assert_int_equal(idset_next(s, after), sorted_next(after));
	}
	assert_true(idset_bytes(s) <= 4 * s->count + 64 * s->n);
}

/* rounds of adds (add_pct of them) and removes of ids drawn by draw(),
 * held_pct of the removes of ids the set holds; the set checked against
 * the model every 2,000 */
static void churn(struct idset *s, int64_t (*draw)(void), unsigned add_pct, unsigned held_pct, int rounds)
{
	for (int round = 1; round <= rounds; round++) {
		int64_t id = draw();

		if (rnd() % 100 < add_pct) {
			idset_add(s, id);
			sorted_add(id);
		} else {
			if (n_sorted > 0 && rnd() % 100 < held_pct)
				id = sorted[rnd() % n_sorted];
			idset_del(s, id);
			sorted_del(id);
		}
		if (round % 2000 == 0)
			like_model(s);
	}
	like_model(s);
}

/* 14,336 ids about the border of two containers: 6,144 of the one below,
 * 8,192 of the one above */
static int64_t draw_dense(void)
{
	return 2 * 65536 - 6144 + rnd() % 14336;
}

/* the ids of a daemon (dense, from 1), sparse ones up to 2^40, ids at the
 * borders of containers, and ids no daemon hands out */
static int64_t draw_mixed(void)
{
	static const int64_t odd[] = {
		INT64_MIN, INT64_MIN + 1, -65537, -65536, -65535, -1, 0,
		(INT64_C(1) << 48) - 1, INT64_C(1) << 48, INT64_MAX - 65536, INT64_MAX - 1, INT64_MAX,
	};
	int64_t border = (int64_t) (rnd() % 64) * 65536 + (int) (rnd() % 5) - 2;

	switch (rnd() % 5) {
	case 0:
		return 1 + rnd() % 100000;
	case 1:
		return 1 + (int64_t) ((uint64_t) rnd() << 16 ^ rnd()) % (INT64_C(1) << 40);
	case 2:
		return border;
	case 3:
		return odd[rnd() % (sizeof(odd) / sizeof(*odd))];
	default:
		return rnd64();
	}
}

/* Ids of two containers (6,144 of the one, 8,192 of the other) added and
 * removed at random, so many adds in 100 that about as many of their ids
 * in 100 are in: at 90% both are past 4,096 ids (bitmaps), at 10% both
 * below 2,048 (arrays); 50% and 25% keep the larger about each limit, 67%
 * and 33% the smaller.  Then emptied. */
static void dense_ids_across_the_array_bitmap_border_match_the_model(void **state)
{
	static const unsigned fill[] = { 90, 50, 30, 25, 10, 67, 50, 80, 33, 0 };
	struct idset s = { 0 };

	n_sorted = 0;
	for (size_t f = 0; f < sizeof(fill) / sizeof(*fill); f++)
		churn(&s, draw_dense, fill[f], 0, 40000);
	while (n_sorted > 0) {
		idset_del(&s, sorted[n_sorted / 2]);
		sorted_del(sorted[n_sorted / 2]);
		if (n_sorted % 500 == 0)
			like_model(&s);
	}
	assert_int_equal(s.count, 0);
	assert_int_equal(idset_bytes(&s), 0);
	idset_free(&s);
}

static void sparse_and_mixed_ids_match_the_model(void **state)
{
	struct idset s = { 0 };

	n_sorted = 0;
	churn(&s, draw_mixed, 70, 50, 30000);
	churn(&s, draw_mixed, 30, 50, 30000);
	churn(&s, draw_mixed, 60, 50, 30000);
	idset_free(&s);
	assert_int_equal(idset_next(&s, 0), 0);
	assert_int_equal(s.count, 0);
}

/* A container of 4,096 ids or fewer is an array (2 bytes an id, its
 * room growing by half), past that a bitmap of 8 KiB; the bitmap stays one
 * down to 2,048 ids, and the array it becomes below stays one up to 4,096. */
static void a_container_turns_bitmap_past_4096_and_back_below_2048(void **state)
{
	struct idset s = { 0 };
	size_t slot;

	for (int64_t i = 0; i < 4096; i++)
		idset_add(&s, 65536 + i);
	slot = idset_bytes(&s) - 4096 * 2;      /* the container's own place */
	idset_add(&s, 65536 + 60000);
	assert_int_equal(idset_bytes(&s), slot + 8192);
	for (int64_t i = 0; i < 2048; i++)
		idset_del(&s, 65536 + i);
	assert_int_equal(s.count, 2049);
	idset_del(&s, 65536 + 2048);
	assert_int_equal(idset_bytes(&s), slot + 8192);          /* 2,048: a bitmap */
	idset_del(&s, 65536 + 2049);
	assert_int_equal(idset_bytes(&s), slot + 2048 * 2);      /* 2,047: an array */
	idset_add(&s, 65536 + 2049);
	idset_add(&s, 65536 + 2048);
	assert_int_equal(idset_bytes(&s), slot + 3072 * 2);      /* grown by half */
	for (int64_t i = 0; i < 2048; i++)
		idset_add(&s, 65536 + i);
	assert_int_equal(s.count, 4097);
	assert_int_equal(idset_bytes(&s), slot + 8192);          /* a bitmap again */
	assert_int_equal(idset_next(&s, 65536 + 4095), 65536 + 60000);
	assert_int_equal(idset_next(&s, 65536 + 60000), 0);
	idset_free(&s);
}

/* The daemon's case: ids 1 to a million in 16 bitmaps, 128 KiB; then, as
 * the set thins out, no more than 4 bytes an id. */
static void a_dense_million_holds_under_200_kib(void **state)
{
	struct idset s = { 0 };

	for (int64_t i = 1; i <= 1000000; i++)
		idset_add(&s, i);
	assert_int_equal(s.count, 1000000);
	assert_true(idset_bytes(&s) < 200 * 1024);
	assert_int_equal(idset_next(&s, 0), 1);
	assert_int_equal(idset_next(&s, 654321), 654322);
	assert_int_equal(idset_next(&s, 1000000), 0);
	for (int64_t i = 1; i <= 1000000; i++)
		if (i % 100)
			idset_del(&s, i);
	assert_int_equal(s.count, 10000);
	assert_true(idset_bytes(&s) <= 4 * 10000);
	assert_int_equal(idset_next(&s, 0), 100);
	assert_int_equal(idset_next(&s, 654321), 654400);
	idset_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(appended_ids_walk_in_order),
		cmocka_unit_test(random_adds_and_removes_match_the_model),
		cmocka_unit_test(dense_ids_across_the_array_bitmap_border_match_the_model),
		cmocka_unit_test(sparse_and_mixed_ids_match_the_model),
		cmocka_unit_test(a_container_turns_bitmap_past_4096_and_back_below_2048),
		cmocka_unit_test(a_dense_million_holds_under_200_kib),
	};

	return cmocka_run_group_tests_name("idset", tests, NULL, NULL);
}
