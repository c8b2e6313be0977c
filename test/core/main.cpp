#define BOOST_TEST_MODULE pixtream core
#include <boost/test/unit_test.hpp>
