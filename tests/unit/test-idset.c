/*
 * test-idset.c - the ordered id sets behind listings by status: whatever
 * order ids come and go in, the set walks them in order, each once, against
 * a plain array as the model.
 */
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
	idset_del(&s, 3);       /* not in: no change */
	idset_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(appended_ids_walk_in_order),
		cmocka_unit_test(random_adds_and_removes_match_the_model),
	};

	return cmocka_run_group_tests_name("idset", tests, NULL, NULL);
}
