/*
 * mproc.h - umbrella header: includes every public mproc module.
 * Each module's header also compiles on its own.
 */
#ifndef MPROC_H
#define MPROC_H

#include "mproc/common.h"
#include "mproc/shm.h"
#include "mproc/queue.h"
#include "mproc/pipe.h"
#include "mproc/process.h"
#include "mproc/pool.h"
#include "mproc/wait.h"
#include "mproc/listener.h"

#endif /* MPROC_H */
