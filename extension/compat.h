/*
 * compat.h: the differences between the PostgreSQL versions coherence
 * supports (15 to 18), in one place.
 */
#ifndef COHERENCE_COMPAT_H
#define COHERENCE_COMPAT_H

/* PostgreSQL 18 replaced pg_attribute_noreturn() with pg_noreturn. */
#if PG_VERSION_NUM < 180000
#define pg_noreturn pg_attribute_noreturn()
#endif

#endif							/* COHERENCE_COMPAT_H */
