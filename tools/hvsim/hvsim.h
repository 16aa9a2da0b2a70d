/*
 * tools/hvsim/hvsim.h - pieces of the hvsim program shared between its
 * files.
 */
#ifndef HVSIM_HVSIM_H
#define HVSIM_HVSIM_H

/* `hvsim ctl ...`: the control-socket client. Returns the exit status. */
int hvsim_ctl_main(int argc, char **argv);

#endif /* HVSIM_HVSIM_H */
