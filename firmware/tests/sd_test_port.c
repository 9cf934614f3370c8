/*
 * sd_test_port.c - the smallest port the host tests need: a cost counter
 * that counts calls (deterministic). Not a board; see firmware/ports/.
 */
#include "sd_port.h"

static uint64_t sd_test_ticks;

uint64_t sd_port_cost_now(void)
{
    return ++sd_test_ticks;
}

const char *sd_port_cost_unit(void)
{
    return "calls";
}
