#define BOOST_TEST_MODULE pixtream swarm
#include <boost/test/unit_test.hpp>
