#ifndef SHIPPY_CNATS_H
#define SHIPPY_CNATS_H
#include <nats/nats.h>
#endif
