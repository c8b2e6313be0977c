#define BOOST_TEST_MODULE pixtream peer
#include <boost/test/unit_test.hpp>
