/* temperature.h — the calibrator object, shared by temperature.c (fitting)
 * and calibrator.c (accessors, apply, JSON).  Private to those two files.
 */
#ifndef CALIB_TEMPERATURE_H
#define CALIB_TEMPERATURE_H

#include "internal.h"

struct calib_calibrator {
    calib_method method;
    calib_objective objective;
    double temperature;
    int binary;               /* fitted on top-label rows: sigmoid form   */
    int iterations;           /* data passes (NLL) or objective evaluations */
    double objective_value;   /* objective at `temperature`               */
    const char *solver;       /* "newton-log-beta" or "grid+golden"       */
    char **diag;              /* malloc'd sentences                       */
    size_t n_diag;
    size_t fitted_rows;
    size_t classes;
};

/* Returns a zeroed calibrator for `method`/`objective` with T = 1, or NULL
 * when out of memory. */
calib_calibrator *calib__calibrator_new(calib_objective objective);

/* Appends a diagnostic sentence; CALIB_OK or CALIB_ENOMEM. */
int calib__calibrator_note(calib_calibrator *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif /* CALIB_TEMPERATURE_H */
