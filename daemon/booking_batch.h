/*
 * Group commit for booking.create (docs/booking-rules.md, "Group
 * commit"). Bookings that arrive while earlier ones are being committed
 * wait here, and go together to booking_create_batch() in one call: one
 * transaction, so one WAL flush and one take of each offer's row for many
 * bookings. A request that finds the database idle goes at once, alone.
 * Each request gets its own answer, after the commit.
 *
 * database.booking_batch_max caps the requests of one call;
 * database.booking_batch_inflight the calls under way at once.
 */
#ifndef BOOKING_BATCH_H
#define BOOKING_BATCH_H

struct app;
struct request;

void booking_batch_start(struct app *app);
/* Answers what still waits (unavailable); calls under way are answered
 * by the pool as it closes. */
void booking_batch_stop(void);
/* Calls made and requests they carried since the start (system.health). */
void booking_batch_stats(unsigned long long *calls,
    unsigned long long *requests);
/* The handler of booking.create. */
void booking_batch_submit(struct request *req);

#endif
