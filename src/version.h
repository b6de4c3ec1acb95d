#ifndef MOTE_VERSION_H
#define MOTE_VERSION_H
#define MOTE_VERSION "0.1.0"
#endif
